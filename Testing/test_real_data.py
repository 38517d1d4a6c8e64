"""The developers' real cases: `diffugts info` reports exactly what SimpleITK reads; masks share their image's grid."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import SimpleITK as sitk

from diffugts.io import read_volume, to_ras


def _manifest(real_data_dir):
    with open(real_data_dir / "manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_info_matches_simpleitk_on_every_real_image(real_data_dir):
    paths = sorted(str(p) for p in real_data_dir.rglob("*.nii.gz"))  # images, masks, healthy/, unlabeled/
    assert len(paths) >= len({row["image"] for row in _manifest(real_data_dir)})
    result = subprocess.run([sys.executable, "-m", "diffugts", "info", "--json", *paths],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["path"] for r in reports] == paths
    for report in reports:
        image = sitk.ReadImage(report["path"])
        assert report["size"] == list(image.GetSize())
        assert report["spacing"] == list(image.GetSpacing())
        assert report["origin"] == list(image.GetOrigin())
        assert np.asarray(report["direction"]).ravel().tolist() == list(image.GetDirection())
        array = sitk.GetArrayViewFromImage(image)
        assert report["intensity"]["min"] == float(array.min()) and report["intensity"]["max"] == float(array.max())
    modalities = {r["path"].rsplit("/", 1)[-1]: r["modality"] for r in reports}
    assert modalities["pyrad_lung1_ct.nii.gz"] == "CT" and modalities["brats13_pat0005_flair.nii.gz"] == "MR-FLAIR"


def test_every_mask_lies_on_its_image_grid(real_data_dir):
    for row in _manifest(real_data_dir):
        if not row["mask"]:
            continue
        image, mask = read_volume(real_data_dir / row["image"]), read_volume(real_data_dir / row["mask"])
        assert mask.grid.matches(image.grid, tolerance=0.0), row["case_id"]
        assert set(np.unique(mask.array)) <= {0, 1} and mask.array.any(), row["case_id"]


def test_real_case_reoriented_to_ras_and_back_is_unchanged(real_data_dir):
    image = read_volume(real_data_dir / "pyrad_brain1_mr_t1c.nii.gz")
    canonical, reorientation = to_ras(image)
    back = reorientation.to_original(canonical)
    assert back.grid == image.grid and np.array_equal(back.array, image.array)
