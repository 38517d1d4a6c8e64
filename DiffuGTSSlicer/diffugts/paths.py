"""Where the engine keeps what it downloads and caches: $DIFFUGTS_HOME, else the user's data folders."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

HOME_ENV = "DIFFUGTS_HOME"


def data_dir() -> Path:
    """Downloaded model weights and other user data ($DIFFUGTS_HOME, else the platform's user data folder)."""
    configured = os.environ.get(HOME_ENV)
    return Path(configured).expanduser() if configured else Path(platformdirs.user_data_dir("diffugts", appauthor=False))


def cache_dir() -> Path:
    """Recomputable caches (text embeddings, features): $DIFFUGTS_HOME/cache, else the user cache folder."""
    configured = os.environ.get(HOME_ENV)
    return Path(configured).expanduser() / "cache" if configured else \
        Path(platformdirs.user_cache_dir("diffugts", appauthor=False))
