"""A DICOM SEG read back by the reference toolkits, onto the grid of the volume it segments: highdicom's
reader, and dcmqi's segimage2itkimage (the converter behind Slicer's QuantitativeReporting)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import highdicom as hd
import numpy as np
import SimpleITK as sitk

from diffugts.io import Volume


def _paste(grid: Volume, array: np.ndarray, index_to_lps: np.ndarray) -> np.ndarray:
    """``array`` [k, j, i] (its (i, j, k) -> LPS affine given) placed into a zero array on ``grid``: its axes must
    be the grid's (in any order and sign) and its voxel centres on the grid's within a hundredth of a voxel."""
    mapping = np.linalg.inv(grid.grid.ijk_to_lps) @ index_to_lps
    assert np.allclose(mapping[:3, :3], np.rint(mapping[:3, :3]), atol=1e-4), mapping
    assert np.allclose(mapping[:3, 3], np.rint(mapping[:3, 3]), atol=0.01), mapping
    k, j, i = np.indices(array.shape).reshape(3, -1)
    ours = np.rint(mapping[:3] @ np.stack([i, j, k, np.ones_like(i)])).astype(int)
    out = np.zeros(grid.array.shape, array.dtype)
    out[ours[2], ours[1], ours[0]] = array.reshape(-1)
    return out


def by_highdicom(path: Path, grid: Volume, segment: int | None = None) -> np.ndarray:
    """The label map (``segment`` None: all segments combined) or one segment's values, on ``grid``."""
    seg = hd.seg.segread(path)
    if segment is None:
        volume = seg.get_volume(combine_segments=True, relabel=False)
    else:
        volume = seg.get_volume(segment_numbers=[segment])
    array = volume.array if volume.array.ndim == 3 else volume.array[..., 0]
    affine = volume.affine.copy()
    # highdicom indexes (slice, row, column); our (i, j, k) is (column, row, slice)
    affine[:3, :3] = volume.affine[:3, 2::-1]
    return _paste(grid, array, affine)


def by_dcmqi(path: Path, grid: Volume, out: Path) -> np.ndarray:
    """The label map dcmqi's segimage2itkimage makes of the SEG (one image per segment), on ``grid``."""
    binary = shutil.which("segimage2itkimage") or str(Path(sys.executable).parent / "segimage2itkimage")
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([binary, "--inputDICOM", str(path), "--outputDirectory", str(out), "--outputType", "nifti"],
                   check=True, capture_output=True, text=True)
    labels = np.zeros(grid.array.shape, np.uint8)
    for file in sorted(out.glob("*.nii.gz")):
        image = sitk.ReadImage(str(file))
        index_to_lps = np.eye(4)
        index_to_lps[:3, :3] = np.asarray(image.GetDirection()).reshape(3, 3) * np.asarray(image.GetSpacing())
        index_to_lps[:3, 3] = image.GetOrigin()
        segment = _paste(grid, sitk.GetArrayFromImage(image), index_to_lps)
        number = int(file.name.split(".")[0])
        assert not np.any(labels[segment > 0]), "segments overlap"
        labels[segment > 0] = number
    return labels
