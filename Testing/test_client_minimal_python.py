"""`diffugts segment --server` with the standard library only, as on Slicer 5.6/5.8 (Python 3.9, no torch):
the same files as any run, on the input's grid, from a real server."""

from __future__ import annotations

import ast
import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from serve_support import TOKEN, running_server

from diffugts.data.phantom import make_phantom
from diffugts.io import read_grid, write_volume
from diffugts.segment.outputs import output_names

ENGINE = Path(__file__).resolve().parents[1] / "DiffuGTSSlicer"
# No site-packages at all (-S): only the standard library and the bundled engine folder can be imported.
BARE = ("import sys; sys.path.insert(0, sys.argv.pop(1)); from diffugts.cli import main; "
        "code = main(sys.argv[1:]); "
        "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] == 'diffugts')); sys.exit(code)")


def _python39() -> str | None:
    """A working CPython 3.9 on this machine, if any (CI machines may have none: then only the -S run)."""
    candidates = [shutil.which("python3.9"), *sorted(glob.glob("/root/.pyenv/versions/3.9*/bin/python"))]
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                               text=True)
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 9)":
            return candidate
    return None


PYTHON39 = _python39()
PYTHONS = [pytest.param(sys.executable, id="this-python-no-site-packages"),
           pytest.param(PYTHON39, id="python3.9", marks=pytest.mark.skipif(not PYTHON39, reason="no Python 3.9 here"))]


@pytest.fixture(scope="module")
def server(segmenter, tmp_path_factory):
    with running_server(segmenter, tmp_path_factory.mktemp("serve") / "work", token=TOKEN) as running:
        yield running


@pytest.mark.slow
@pytest.mark.parametrize("python", PYTHONS)
def test_segment_through_a_server_needs_only_the_standard_library(python, server, tmp_path):
    image = write_volume(make_phantom("kidney tumor", "CT", (20, 20, 12), seed=3).image, tmp_path / "ct.nii.gz")
    out = tmp_path / "out"
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV"))}
    result = subprocess.run(
        [python, "-S", "-c", BARE, str(ENGINE), "--progress", "json", "segment", str(image), "--prompt",
         "kidney tumor", "--fast", "--roi", "2:18,:,:", "--server", server.url, "--out", str(out)],
        capture_output=True, text=True, env={**env, "DIFFUGTS_TOKEN": TOKEN}, timeout=300)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(output_names(1))
    for name in ("labels.nii.gz", "probability_1.nii.gz", "segmentation.seg.nrrd", "pseudo_healthy.nii.gz"):
        assert read_grid(out / name).matches(read_grid(image), tolerance=1e-4), name
    report = json.loads((out / "report.json").read_text())
    assert report["prompts"][0]["prompt"] == "kidney tumor" and report["server"]
    assert 'DIFFUGTS_PROGRESS {"stage": "download", "fraction": 1.0}' in result.stderr

    loaded = ast.literal_eval(result.stdout.split("LOADED", 1)[1].strip())
    for module in loaded:  # what ran is written in Python 3.9's syntax
        relative = Path(*module.split("."))
        path = ENGINE / (f"{relative}/__init__.py" if (ENGINE / relative).is_dir() else f"{relative}.py")
        ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 9))
