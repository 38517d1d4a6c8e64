"""A .seg.nrrd written by the engine opens in slicerio with names, colors, terminology and exact voxels."""

from __future__ import annotations

import numpy as np
import pytest
import slicerio
from geometry_cases import make_volume

from diffugts.errors import DiffuGTSError
from diffugts.io import Segment, read_volume, write_segmentation, write_volume

MASS_IN_KIDNEY = (
    "Segmentation category and type - 3D Slicer General Anatomy list"
    "~SCT^49755003^Morphologically Altered Structure~SCT^4147007^Mass~^^"
    "~Anatomic codes - DICOM master list~SCT^64033007^Kidney~^^"
)


def test_segments_keep_names_colors_terminology_and_voxels(tmp_path):
    reference = make_volume("oblique", shape_kji=(6, 8, 10))
    first = np.zeros(reference.array.shape, bool)
    first[1:4, 2:6, 3:8] = True
    second = np.zeros_like(first)
    second[2:6, 4:8, 5:10] = True  # overlaps the first: goes to a second layer
    path = write_segmentation(tmp_path / "result.seg.nrrd", reference, [
        Segment("kidney tumor", first, (0.9, 0.2, 0.1), MASS_IN_KIDNEY),
        Segment("kidney cyst", second, (0.2, 0.5, 0.9)),
    ])
    segmentation = slicerio.read_segmentation(str(path))
    assert np.allclose(segmentation["ijkToLPS"], reference.grid.ijk_to_lps, atol=1e-9)
    assert slicerio.segment_names(segmentation) == ["kidney tumor", "kidney cyst"]
    tumor = slicerio.segment_from_name(segmentation, "kidney tumor")
    assert np.allclose(tumor["color"], (0.9, 0.2, 0.1))
    assert tumor["terminology"]["type"] == ["SCT", "4147007", "Mass"]
    assert tumor["terminology"]["anatomicRegion"] == ["SCT", "64033007", "Kidney"]
    for name, mask in (("kidney tumor", first), ("kidney cyst", second)):
        voxels = slicerio.segment_mask(segmentation, slicerio.segment_from_name(segmentation, name))
        assert np.array_equal(np.transpose(voxels, (2, 1, 0)), mask)


def test_segmentation_of_an_input_read_from_disk_lies_on_its_grid(tmp_path):
    image = read_volume(write_volume(make_volume("sagittal"), tmp_path / "image.nrrd"))
    path = write_segmentation(tmp_path / "out.seg.nrrd", image, [Segment("tumor", image.array > 0, (1, 0, 0))])
    segmentation = slicerio.read_segmentation(str(path))
    assert np.array_equal(segmentation["ijkToLPS"], image.grid.ijk_to_lps)


def test_segmentation_needs_the_seg_nrrd_suffix(tmp_path):
    reference = make_volume("LPS")
    with pytest.raises(DiffuGTSError, match=r"must end in \.seg\.nrrd"):
        write_segmentation(tmp_path / "out.nrrd", reference, [])


def test_segment_mask_must_be_on_the_reference_grid(tmp_path):
    reference = make_volume("LPS")
    with pytest.raises(ValueError, match="not on the reference grid"):
        write_segmentation(tmp_path / "out.seg.nrrd", reference, [Segment("x", np.zeros((2, 2, 2), bool), (1, 0, 0))])
    assert not list(tmp_path.iterdir())
