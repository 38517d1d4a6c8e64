"""``diffugts data ...`` through a real subprocess: phantom sets, dataset checks, splits, errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from diffugts.data.manifest import read_manifest_rows
from diffugts.data.readers import read_manifest
from diffugts.io import read_volume


def diffugts(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "diffugts", "--progress", "none", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def phantom_set(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("phantoms")
    result = diffugts("data", "phantom", "--n", "4", "--size", "40", "--seed", "3", "--out", str(out),
                      "--categories", "liver tumor,kidney cyst", "brain glioma", "healthy")
    assert result.returncode == 0, result.stderr
    return out


def test_phantom_set_has_the_real_manifest_schema(phantom_set: Path, real_data_dir: Path) -> None:
    with (real_data_dir / "manifest.csv").open(newline="") as handle:
        real_header = next(csv.reader(handle))
    with (phantom_set / "manifest.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
        assert next(iter(rows)).keys() == dict.fromkeys(real_header).keys()
    assert [r["tumor_prompt"] for r in rows[:3]] == ["liver tumor", "kidney cyst", "brain glioma"]
    for row in rows:
        image, mask = read_volume(phantom_set / row["image"]), read_volume(phantom_set / row["mask"])
        assert mask.grid.matches(image.grid, 0.0)
        assert row["size_xyz"] == "x".join(map(str, image.size)) == "40x40x40"
        assert np.allclose([float(s) for s in row["spacing_xyz"].split("x")], image.spacing, atol=1e-3)
        assert row["modality"] in ("CT", "MR-T1", "MR-T1c", "MR-T2", "MR-FLAIR")
        assert bool(mask.array.any()) == ("healthy" not in row["notes"])


def test_phantom_set_is_read_back_as_cases(phantom_set: Path) -> None:
    cases = read_manifest(phantom_set / "manifest.csv")
    assert [c.category for c in cases[:3]] == ["liver tumor", "kidney cyst", "brain glioma"]
    images, mask = cases[2].load()
    assert mask.grid.matches(images[cases[2].modality].grid) and mask.array.any()
    result = diffugts("data", "cases", str(phantom_set), "--verify", "--json")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["status"] for line in result.stdout.splitlines()] == ["ok"] * 4


def test_same_seed_gives_the_same_set(phantom_set: Path, tmp_path: Path) -> None:
    result = diffugts("data", "phantom", "--n", "1", "--size", "40", "--seed", "3", "--out", str(tmp_path),
                      "--categories", "liver tumor")
    assert result.returncode == 0, result.stderr
    name = "phantom_0000_" + next(p.name.split("_", 2)[2] for p in phantom_set.glob("phantom_0000_*_mask.nii.gz")
                                  ).removesuffix("_mask.nii.gz") + ".nii.gz"
    again, first = read_volume(tmp_path / name), read_volume(phantom_set / name)
    np.testing.assert_array_equal(again.array, first.array)
    assert again.grid == first.grid


def test_existing_set_is_not_overwritten(phantom_set: Path) -> None:
    before = (phantom_set / "manifest.csv").read_bytes()
    result = diffugts("data", "phantom", "--n", "1", "--size", "16", "--out", str(phantom_set))
    assert result.returncode == 2
    assert "already holds a phantom set" in result.stderr and "Traceback" not in result.stderr
    assert (phantom_set / "manifest.csv").read_bytes() == before


def test_overwrite_replaces_the_whole_set_and_keeps_foreign_files(tmp_path: Path) -> None:
    assert diffugts("data", "phantom", "--n", "3", "--size", "24", "--out", str(tmp_path),
                    "--categories", "liver tumor").returncode == 0
    (tmp_path / "my_notes.txt").write_text("not part of the set")
    result = diffugts("data", "phantom", "--n", "1", "--size", "24", "--out", str(tmp_path), "--overwrite",
                      "--categories", "kidney cyst")
    assert result.returncode == 0, result.stderr
    rows = read_manifest_rows(tmp_path / "manifest.csv")
    expected = {"manifest.csv", "tissue_labels.json", "my_notes.txt", rows[0]["image"], rows[0]["mask"],
                rows[0]["image"].removesuffix(".nii.gz") + "_labels.nii.gz"}
    assert {p.name for p in tmp_path.iterdir()} == expected


@pytest.mark.parametrize("args, message", [
    (["--categories", "heart tumor"], "unknown tumor category 'heart tumor'"),
    (["--categories", "lung tumor", "--modality", "MR-T2"], "no modality in MR-T2 shows a lung tumor"),
    (["--size", "16", "16"], "--size takes one or three numbers"),
])
def test_bad_phantom_requests_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = diffugts("data", "phantom", "--n", "1", "--out", str(tmp_path), *args)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_out_must_be_a_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = diffugts("data", "phantom", "--n", "1", "--size", "16", "--out", str(tmp_path / "file"))
    assert result.returncode == 2 and "is a file, not a folder" in result.stderr


def test_cases_reports_unknown_labels_and_fails(phantom_set: Path, tmp_path: Path) -> None:
    for file in phantom_set.iterdir():
        (tmp_path / file.name).write_bytes(file.read_bytes())
    row = read_manifest(tmp_path / "manifest.csv")[0]
    mask = sitk.ReadImage(str(row.mask))
    mask[0, 0, 0] = 7
    sitk.WriteImage(mask, str(row.mask))
    result = diffugts("data", "cases", str(tmp_path / "manifest.csv"), "--verify")
    assert result.returncode == 2
    assert f"manifest case {row.case_id}: label values [7] are unknown" in result.stderr
    assert "1 of 4 cases have problems" in result.stderr and "Traceback" not in result.stderr


def test_splits_command_prints_the_config() -> None:
    result = diffugts("data", "splits", "--json")
    assert result.returncode == 0, result.stderr
    splits = json.loads(result.stdout)
    assert "pancreatic tumor" in splits["organs-a"]["unseen"] and "liver tumor" in splits["organs-a"]["seen"]
