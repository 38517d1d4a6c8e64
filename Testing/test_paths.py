"""User data and cache folders: $DIFFUGTS_HOME wins, otherwise the platform's per-user folders."""

from __future__ import annotations

from pathlib import Path

import platformdirs

from diffugts.paths import cache_dir, data_dir


def test_diffugts_home_holds_data_and_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("DIFFUGTS_HOME", str(tmp_path))
    assert data_dir() == tmp_path
    assert cache_dir() == tmp_path / "cache"


def test_platform_folders_by_default(monkeypatch):
    monkeypatch.delenv("DIFFUGTS_HOME", raising=False)
    assert data_dir() == Path(platformdirs.user_data_dir("diffugts", appauthor=False))
    assert cache_dir() == Path(platformdirs.user_cache_dir("diffugts", appauthor=False))
    assert data_dir() != cache_dir()
