"""A box of voxel indices of a grid, as the user writes it (--roi i0:i1,j0:j1,k0:k1); plain Python, no numpy."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import DiffuGTSError


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
