"""A box of voxels cut out of a volume and put back: the sub-volume keeps its exact place in space."""

from __future__ import annotations

import numpy as np

from .box import Box
from .volume import Volume

__all__ = ["Box", "crop", "uncrop"]


def crop(volume: Volume, box: Box) -> Volume:
    """The voxels of ``box`` as a volume whose origin is where they lie in space (same spacing, direction)."""
    box = box.fit(volume.size)
    origin = volume.grid.ijk_to_lps @ np.array([*box.start, 1.0])
    cropped = volume.like(volume.array)  # copies modality and source, not warnings
    cropped.array = np.ascontiguousarray(volume.array[box.slices])
    cropped.origin = tuple(float(v) for v in origin[:3])
    return cropped


def uncrop(part: Volume, full: Volume, box: Box, fill: float = 0) -> Volume:
    """``part`` (made by ``crop(full, box)``) put back on ``full``'s grid, ``fill`` elsewhere."""
    box = box.fit(full.size)
    array = np.full(full.array.shape, fill, dtype=part.array.dtype)
    array[box.slices] = part.array
    return full.like(array)
