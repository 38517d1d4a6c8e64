"""Data: synthetic tumor phantoms, readers for public dataset layouts, and the zero-shot split protocol.

The package imports nothing heavy itself (the command line lists categories without numpy); its public
names load their modules on first use.
"""

from __future__ import annotations

import importlib

_EXPORTS = {"Case": "case", "ImageRef": "case", "CATEGORIES": "categories", "HEALTHY": "categories",
            "TumorCategory": "categories", "find_category": "categories", "MANIFEST_COLUMNS": "manifest",
            "LAYOUTS": "readers", "detect_layout": "readers", "read_dataset": "readers", "ZeroShotSplit": "splits",
            "load_splits": "splits", "zero_shot_split": "splits"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
