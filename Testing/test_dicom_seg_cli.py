"""`diffugts segment DICOM_FOLDER` writes segmentation.dcm, which highdicom and dcmqi read back voxel for voxel
as labels.nii.gz; --dicom-seg on an input that is not DICOM is refused before any model loads."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from dicom_cases import regular_positions, write_series
from seg_readback import by_dcmqi, by_highdicom

from diffugts.data.phantom import make_phantom
from diffugts.io import read_volume, write_volume


def _diffugts(*args: str, home) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "diffugts", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "DIFFUGTS_HOME": str(home)})


@pytest.mark.slow
def test_segment_on_a_dicom_folder_writes_a_seg_that_reads_back_as_the_label_map(tmp_path):
    phantom = make_phantom("kidney tumor", "CT", (40, 36, 28), seed=3).image
    direction, spacing = phantom.direction, phantom.spacing
    positions = regular_positions(phantom.origin, direction, spacing, phantom.array.shape[0])
    write_series(tmp_path / "ct", np.rint(phantom.array).astype(np.int16), spacing, positions, direction[:, 0],
                 direction[:, 1])
    done = _diffugts("segment", str(tmp_path / "ct"), "--prompt", "kidney tumor", "--prompt", "liver tumor",
                     "--fast", "--out", str(tmp_path / "out"), home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    labels = read_volume(tmp_path / "out" / "labels.nii.gz")
    image = read_volume(tmp_path / "ct")
    assert labels.grid.matches(image.grid, tolerance=1e-4)
    seg = tmp_path / "out" / "segmentation.dcm"
    assert np.array_equal(by_highdicom(seg, image), labels.array)
    assert np.array_equal(by_dcmqi(seg, image, tmp_path / "dcmqi"), labels.array)


def test_dicom_seg_of_a_nifti_input_is_refused_in_one_line_before_the_models_load(tmp_path):
    phantom = make_phantom("kidney tumor", "CT", (16, 16, 8), seed=0).image
    write_volume(phantom, tmp_path / "ct.nii.gz")
    done = _diffugts("segment", str(tmp_path / "ct.nii.gz"), "--prompt", "kidney tumor", "--dicom-seg", "binary",
                     "--out", str(tmp_path / "out"), home=tmp_path / "home")
    assert done.returncode != 0
    assert "--dicom-seg binary needs a DICOM series as input" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out" / "report.json").exists()
