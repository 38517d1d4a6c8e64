"""The end-to-end Segmenter (DiffuGTS): text prompts in, masks, probabilities, pseudo-healthy scan out.

The package imports nothing heavy itself (the command line, and the server client under an older Python,
need only ``settings`` and ``job``); its public names load their modules on first use.
"""

from __future__ import annotations

import importlib

_EXPORTS = {"Segmenter": "pipeline", "Finding": "result", "Result": "result", "PRESETS": "settings",
            "SegmentSettings": "settings", "Point": "points", "ClickBox": "points"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
