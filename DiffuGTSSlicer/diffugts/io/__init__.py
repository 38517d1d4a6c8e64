"""Volume I/O that never moves a voxel: read, validate, reorient to RAS and back, write atomically.

The package imports nothing heavy itself (ITK and numpy load with the first reader or writer used), so the
command line and the server client start without them; ``from diffugts.io import read_volume`` works as usual.
"""

from __future__ import annotations

import importlib

_EXPORTS = {"guess_modality": "modality", "Reorientation": "orientation", "orientation_code": "orientation",
            "to_ras": "orientation", "IMAGE_SUFFIXES": "read", "read_grid": "read", "read_volume": "read",
            "atomic_output": "safe_write", "register_input": "safe_write", "write_csv": "safe_write",
            "Grid": "volume", "Volume": "volume", "SEGMENTATION_SUFFIX": "write", "VOLUME_SUFFIXES": "write",
            "Segment": "write", "to_sitk": "write", "write_segmentation": "write", "write_volume": "write"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
