"""The command line, run as users run it: a separate process."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from geometry_cases import make_volume

from diffugts import __version__
from diffugts.demo import DEMO_IMAGE
from diffugts.io import write_volume


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "diffugts", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_commands():
    result = run("--help")
    assert result.returncode == 0
    assert all(name in result.stdout for name in ("info", "segment", "batch", "serve"))


def test_version():
    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"diffugts {__version__}"


def test_no_command_prints_help_and_fails():
    result = run()
    assert result.returncode == 2 and "usage: diffugts" in result.stdout


def test_info_on_the_bundled_demo_case():
    result = run("info", str(DEMO_IMAGE))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "160 x 160 x 30 voxels" in out
    assert "0.570312 x 0.570312 x 5 mm" in out
    assert "orientation  LPS" in out
    assert "-1024 .. 3071" in out
    assert "modality     CT" in out
    assert "pipeline needs about" in out


def test_info_json_gives_the_exact_geometry(tmp_path):
    volume = make_volume("oblique")
    path = write_volume(volume, tmp_path / "oblique.nrrd")
    result = run("info", "--json", str(path))
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout)
    assert facts["size"] == [11, 9, 7]
    assert facts["spacing"] == list(volume.spacing)
    assert facts["origin"] == list(volume.origin)
    assert np.allclose(facts["direction"], volume.direction, rtol=0, atol=1e-12)  # NRRD stores direction x spacing
    assert facts["orientation"] == "RPS"
    assert facts["dtype"] == "int16"


def test_info_keeps_going_past_a_bad_file_and_fails_at_the_end(tmp_path):
    good = write_volume(make_volume("LPS"), tmp_path / "good.nrrd")
    result = run("info", str(tmp_path / "missing.nii.gz"), str(good))
    assert result.returncode == 2
    assert "good.nrrd" in result.stdout
    assert "diffugts: warning:" in result.stderr and "missing.nii.gz: file or folder does not exist" in result.stderr
    assert "1 of 2 images could not be read" in result.stderr
    assert "Traceback" not in result.stderr


def test_progress_json_lines_parse():
    from diffugts.progress import json_lines, parse_progress_line
    import io

    stream = io.StringIO()
    report = json_lines(stream)
    report("encode", 0.25)
    report("encode", 1)
    lines = stream.getvalue().splitlines()
    assert [parse_progress_line(line) for line in lines] == [("encode", 0.25), ("encode", 1.0)]
    assert parse_progress_line("some other output") is None
    assert parse_progress_line("DIFFUGTS_PROGRESS {not json") is None


@pytest.mark.parametrize("args", [
    ["train", "attention", "--out", "x", "--steps", "0"],
    ["train", "attention", "--out", "x", "--size", "-4"],
    ["inpaint", "a.nii.gz", "--mask", "m.nii.gz", "--out", "x", "--steps", "0"],
    ["inpaint", "a.nii.gz", "--mask", "m.nii.gz", "--out", "x", "--device", "gpu"],
])
def test_out_of_range_numbers_and_unknown_devices_are_refused_when_parsing(args, tmp_path):
    result = subprocess.run([sys.executable, "-m", "diffugts", *args], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "is not a whole number of at least 1" in result.stderr or "invalid choice: 'gpu'" in result.stderr
    assert not (tmp_path / "x").exists()


def test_inpaint_refuses_repeated_seeds(tmp_path):
    from diffugts.demo import DEMO_MASK

    result = run("--progress", "none", "inpaint", str(DEMO_IMAGE), "--mask", str(DEMO_MASK), "--out",
                 str(tmp_path / "out"), "--seeds", "0", "0")
    assert result.returncode == 2 and "--seeds repeats a seed" in result.stderr


def test_progress_may_follow_the_command():
    from diffugts.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["--progress", "none", "batch", "--input", "i", "--out", "o", "--prompt", "p"]).progress \
        == "none"
    assert parser.parse_args(["batch", "--input", "i", "--out", "o", "--prompt", "p", "--progress", "json"]).progress \
        == "json"
    assert parser.parse_args(["train", "refine", "--out", "o", "--progress", "json"]).progress == "json"
    assert parser.parse_args(["info", "x"]).progress == "bar"


def test_the_command_line_starts_without_heavy_imports():
    """`diffugts --help` and the server client path must not pay for (or need) torch, numpy or ITK."""
    code = ("import sys, diffugts.cli; diffugts.cli.build_parser(); "
            "print(sorted(m for m in ('torch', 'numpy', 'monai', 'SimpleITK', 'scipy', 'psutil') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr
