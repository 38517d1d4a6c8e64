"""A box of voxels cut out of a volume and put back: the sub-volume keeps its exact place in space."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import DiffuGTSError
from .volume import Volume


@dataclass(frozen=True)
class Box:
    """Voxel index ranges [start, stop) along i, j, k of the input grid."""

    start: tuple[int, int, int]
    stop: tuple[int, int, int]

    @classmethod
    def parse(cls, text: str) -> Box:
        """'i0:i1,j0:j1,k0:k1' (voxel indices, stop excluded; an empty bound means the edge)."""
        match = re.fullmatch(r"\s*(\d*):(\d*)\s*,\s*(\d*):(\d*)\s*,\s*(\d*):(\d*)\s*", text)
        if not match:
            raise DiffuGTSError(f"--roi {text!r} is not three voxel ranges",
                                hint="Write it as i0:i1,j0:j1,k0:k1 in voxel indices, e.g. 100:300,80:260,:")
        bounds = [int(v) if v else None for v in match.groups()]
        start = tuple(b if b is not None else 0 for b in bounds[0::2])
        stop = tuple(b if b is not None else -1 for b in bounds[1::2])  # -1: to the edge, resolved by fit()
        return cls(start, stop)

    def fit(self, size: tuple[int, int, int]) -> Box:
        """This box with open ends resolved against ``size``; an empty or out-of-grid box is an error."""
        stop = tuple(n if s == -1 else s for s, n in zip(self.stop, size))
        if any(a >= b or b > n for a, b, n in zip(self.start, stop, size)):
            raise DiffuGTSError(f"the ROI {self.describe(stop)} is empty or outside the image ({size[0]}x{size[1]}x"
                                f"{size[2]} voxels)", hint="Give start < stop within the image size along i, j, k.")
        return Box(self.start, stop)

    def describe(self, stop: tuple[int, ...] | None = None) -> str:
        stop = stop or self.stop
        return ",".join(f"{a}:{b}" for a, b in zip(self.start, stop))

    @property
    def slices(self) -> tuple[slice, slice, slice]:
        """Numpy slices of a [k, j, i] array."""
        return tuple(slice(a, b) for a, b in zip(reversed(self.start), reversed(self.stop)))


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
