"""Shared fixtures: where the repository and the developers' real data live, and the demo Segmenter."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
ENGINE_DIR = REPO_ROOT / "DiffuGTSSlicer" / "diffugts"


def _shared_data_dir() -> Path:
    configured = os.environ.get("DIFFUGTS_SHARED_DATA")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """../shared/data/real (or $DIFFUGTS_SHARED_DATA): real CT/MR cases with expert masks and manifest.csv."""
    path = _shared_data_dir()
    if not (path / "manifest.csv").is_file():
        pytest.skip(f"real developer data not found at {path} (set DIFFUGTS_SHARED_DATA)")
    return path


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory):
    """The shipped demo Segmenter, loaded once per test module, with the module's own text-embedding cache."""
    from diffugts.segment import Segmenter

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DIFFUGTS_HOME", str(tmp_path_factory.mktemp("home")))
        yield Segmenter.from_pretrained("demo-ct")
