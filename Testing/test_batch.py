"""`diffugts batch`: case lists, resuming after a kill, bad cases recorded and skipped, worker processes, Ray."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from diffugts.batch import BatchCase, ModelSpec, list_cases, run_batch
from diffugts.data.phantom import make_phantom
from diffugts.errors import DiffuGTSError
from diffugts.io import read_grid, write_volume
from diffugts.segment.job import SegmentRequest
from diffugts.segment.outputs import DEFAULTS
from diffugts.segment.write import output_names

PROMPT = "kidney tumor"


def _phantoms(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(count):
        phantom = make_phantom(PROMPT, "CT", (40, 36, 28), seed=seed)  # random oblique, anisotropic grids
        paths.append(write_volume(phantom.image, folder / f"case{seed}.nii.gz"))
    return paths


def _summary(out: Path) -> dict[str, dict[str, str]]:
    with (out / "summary.csv").open(newline="", encoding="utf-8") as handle:
        return {row["case_id"]: row for row in csv.DictReader(handle)}


def _batch(*args: str, home: Path) -> subprocess.Popen:
    env = {**os.environ, "DIFFUGTS_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-m", "diffugts", "--progress", "json", "batch", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)


def _assert_case_complete(out: Path, case_id: str, image: Path) -> None:
    folder = out / case_id
    assert sorted(p.name for p in folder.iterdir()) == sorted(output_names(1, outputs=DEFAULTS["batch"])), case_id
    for name in ("labels.nii.gz", "segmentation.seg.nrrd"):
        assert read_grid(folder / name).matches(read_grid(image), tolerance=1e-4), (case_id, name)
    assert json.loads((folder / "report.json").read_text())["prompts"][0]["prompt"] == PROMPT


def test_cases_from_a_folder_and_from_a_csv(tmp_path):
    images = tmp_path / "images"
    (images / "sub dir").mkdir(parents=True)
    (images / ".hidden").mkdir()
    (images / "dicom_series").mkdir()
    for name in ("a.nii.gz", "sub dir/b.nrrd", ".hidden/c.nii.gz", "notes.txt", "dicom_series/1.dcm"):
        (images / name).write_bytes(b"x")
    (images / "out").mkdir()
    (images / "out" / "old.nii.gz").write_bytes(b"x")
    cases = list_cases(images, exclude=images / "out")
    assert [(c.case_id, Path(c.image).relative_to(images).as_posix()) for c in cases] == [
        ("a", "a.nii.gz"), ("dicom_series", "dicom_series"), ("sub_dir__b", "sub dir/b.nrrd")]

    table = tmp_path / "cases.csv"
    table.write_text("image,case_id,organ_mask,modality\nimages/a.nii.gz,,,\n/abs/b.nrrd,my/../case,masks/b.nii.gz,CT\n")
    a, b = list_cases(table)
    assert a == BatchCase("a", str(tmp_path / "images/a.nii.gz"))
    assert b == BatchCase("my_.._case", "/abs/b.nrrd", str(tmp_path / "masks/b.nii.gz"), "CT")

    bad = {"no_image.csv": ("case_id\nx\n", "no 'image' column"),
           "twice.csv": ("image,case_id\na.nii.gz,x\nb.nii.gz,x\n", "two cases have the id 'x'"),
           "empty_row.csv": ("image\n\n,\n", "line 3 has no image")}
    for name, (text, expected) in bad.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(DiffuGTSError, match=expected):
            list_cases(tmp_path / name)
    with pytest.raises(DiffuGTSError, match="holds no image"):
        list_cases(images / "out", exclude=images / "out")


@pytest.mark.slow
def test_a_batch_killed_midway_and_restarted_loses_nothing_and_redoes_nothing(tmp_path):
    images = _phantoms(tmp_path / "in", 3)
    (tmp_path / "in" / "corrupt.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    out = tmp_path / "out"
    args = ("--input", str(tmp_path / "in"), "--prompt", PROMPT, "--fast", "--threads", "2", "--out", str(out))

    first = _batch(*args, home=tmp_path)
    deadline = time.monotonic() + 300
    while not any((out / f"case{n}" / "report.json").exists() for n in range(3)):  # kill once a case is finished
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    finished = {p.name: (p / "report.json").stat().st_mtime_ns for p in out.glob("case*")}
    assert finished and all(len(list((out / name).iterdir())) == len(output_names(1, outputs=DEFAULTS["batch"]))
                            for name in finished)

    second = _batch(*args, home=tmp_path)
    stdout, stderr = second.communicate(timeout=600)
    assert second.returncode == 3, stderr  # 3: some case failed (the corrupt one)
    rows = _summary(out)
    assert set(rows) == {"case0", "case1", "case2", "corrupt"}
    for name, mtime in finished.items():  # redone nothing
        assert rows[name]["status"] == "done earlier"
        assert (out / name / "report.json").stat().st_mtime_ns == mtime
    for n, image in enumerate(images):  # lost nothing
        assert rows[f"case{n}"]["status"] in ("done", "done earlier")
        _assert_case_complete(out, f"case{n}", image)
    assert rows["corrupt"]["status"] == "failed" and "corrupt.nii.gz" in rows["corrupt"]["error"]
    assert "case corrupt failed" in stderr and "Traceback" not in stderr
    assert not (out / ".partial").exists() and not (out / "corrupt").exists()
    assert f"{3 - len(finished)} done now, {len(finished)} done earlier, 1 failed" in stdout

    changed = _batch(*args[:-2], "--seed", "1", "--out", str(out), home=tmp_path)
    _, stderr = changed.communicate(timeout=120)
    assert changed.returncode == 2 and "made with other settings (request)" in stderr


@pytest.mark.slow
def test_worker_processes_and_a_local_ray_instance_run_the_same_cases(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFUGTS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    images = _phantoms(tmp_path / "in", 2)
    cases = list_cases(tmp_path / "in")
    request = SegmentRequest((PROMPT,), quality="fast")
    runs = {"processes": dict(devices=("cpu", "cpu"), threads=1), "ray": dict(ray_address="local", ray_workers=2)}
    seen = {}
    for name, executor in runs.items():
        outcomes = []
        totals = run_batch(cases, request, tmp_path / name, ModelSpec(device="cpu"), on_outcome=outcomes.append,
                           **executor)
        assert (totals.done, totals.failed, totals.earlier) == (2, 0, 0), [o.error for o in outcomes]
        for image, case in zip(images, cases):
            _assert_case_complete(tmp_path / name, case.case_id, image)
        seen[name] = {o.worker for o in outcomes}
        again = run_batch(cases, request, tmp_path / name, ModelSpec(device="cpu"), **executor)
        assert (again.done, again.earlier) == (0, 2)
    assert all(worker.startswith("cpu pid ") for worker in seen["processes"])
    assert seen["ray"] == {"ray cpu"}
