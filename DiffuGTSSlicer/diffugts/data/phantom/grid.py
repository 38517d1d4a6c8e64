"""Random scanner grids (spacing, orientation, placement) and rasterizing shapes onto them, block by block."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import permutations, product

import numpy as np

from ...io import Volume
from .shapes import rotation

SPACING_RANGE_MM = (0.6, 5.0)
OBLIQUE_PROBABILITY = 0.4
OBLIQUE_MAX_DEGREES = 30.0
_AXIS_FRAMES = [np.eye(3)[:, list(order)] * np.array(signs)
                for order in permutations(range(3)) for signs in product((1.0, -1.0), repeat=3)]


@dataclass(frozen=True)
class Paint:
    """Paint labels where ``shape`` has q below each threshold (in order, so the last, smallest wins).

    ``within``: only over voxels whose label in the reference map is one of these.
    """

    shape: object
    levels: tuple[tuple[float, int], ...]
    within: tuple[int, ...] | None = None


@dataclass(frozen=True)
class PhantomGrid:
    """A voxel grid: shape [k, j, i], spacing (i, j, k) mm, LPS origin, direction (columns i, j, k)."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: np.ndarray
    direction: np.ndarray

    @property
    def affine(self) -> np.ndarray:
        """3x3 matrix from voxel index (i, j, k) to LPS offset from the origin."""
        return self.direction * np.asarray(self.spacing)

    def block(self, low: np.ndarray, high: np.ndarray) -> tuple[slice, slice, slice] | None:
        """Index slices [k, j, i] covering a world box, or None when it misses the grid."""
        corners = np.array([[lx, ly, lz] for lx in (low[0], high[0]) for ly in (low[1], high[1])
                            for lz in (low[2], high[2])], dtype=float)
        ijk = np.linalg.solve(self.affine, (corners - self.origin).T)
        start = np.maximum(np.floor(ijk.min(axis=1)).astype(int), 0)
        stop = np.minimum(np.ceil(ijk.max(axis=1)).astype(int) + 1, self.shape[::-1])
        if np.any(stop <= start):
            return None
        return slice(start[2], stop[2]), slice(start[1], stop[1]), slice(start[0], stop[0])

    def coords(self, block: tuple[slice, slice, slice]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World x, y, z (float32 arrays of the block's shape) of the voxel centres in ``block``."""
        k = np.arange(block[0].start, block[0].stop, dtype=np.float32)[:, None, None]
        j = np.arange(block[1].start, block[1].stop, dtype=np.float32)[None, :, None]
        i = np.arange(block[2].start, block[2].stop, dtype=np.float32)[None, None, :]
        a = self.affine.astype(np.float32)
        return tuple(np.float32(self.origin[r]) + a[r, 0] * i + a[r, 1] * j + a[r, 2] * k for r in range(3))

    def points(self, flat_index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World x, y, z of the voxels with these flat indices."""
        k, j, i = np.unravel_index(flat_index, self.shape)
        xyz = self.origin[:, None] + self.affine @ np.stack([i, j, k]).astype(float)
        return tuple(xyz.astype(np.float32))

    def volume(self, array: np.ndarray, modality: str = "unknown") -> Volume:
        return Volume(array, self.spacing, tuple(self.origin), self.direction, modality=modality)


def random_grid(rng: np.random.Generator, size: Sequence[int], center: np.ndarray,
                fov_range_mm: tuple[float, float]) -> PhantomGrid:
    """A grid of ``size`` voxels (i, j, k) near ``center``: random spacing, axis order, flips and obliquity.

    Spacing is drawn from 0.6-5 mm, narrowed so the field of view stays within ``fov_range_mm``;
    one random axis is the slice axis (its own spacing), the other two share an in-plane spacing.
    """
    size = np.asarray(size, dtype=int)
    low = np.maximum(SPACING_RANGE_MM[0], fov_range_mm[0] / size)
    high = np.maximum(low, np.minimum(SPACING_RANGE_MM[1], fov_range_mm[1] / size))
    draw = lambda axis: float(np.exp(rng.uniform(np.log(low[axis]), np.log(high[axis]))))  # noqa: E731
    slice_axis = int(rng.integers(3))
    in_plane = draw((slice_axis + 1) % 3)
    spacing = np.array([draw(axis) if axis == slice_axis else in_plane for axis in range(3)])
    spacing = np.clip(spacing, low, high).round(4)

    direction = _AXIS_FRAMES[int(rng.integers(len(_AXIS_FRAMES)))]
    if rng.random() < OBLIQUE_PROBABILITY:
        direction = rotation(rng, OBLIQUE_MAX_DEGREES) @ direction
    extent = direction * spacing @ (size - 1)  # world vector from voxel 0 to the far corner
    shift = (direction * spacing * size) @ rng.uniform(-0.2, 0.2, size=3)
    origin = np.asarray(center, dtype=float) - extent / 2 + shift
    return PhantomGrid(tuple(int(n) for n in size[::-1]), tuple(spacing.tolist()), origin, direction)


def rasterize(grid: PhantomGrid, paints: Sequence[Paint], reference: np.ndarray | None = None) -> np.ndarray:
    """A uint8 label map on ``grid``: each Paint evaluated only over the block its shape's bounds cover."""
    labels = np.zeros(grid.shape, dtype=np.uint8)
    for paint in paints:
        block = grid.block(*paint.shape.bounds())
        if block is None:
            continue
        _paint(paint, paint.shape.q(*grid.coords(block)), labels[block],
               (labels if reference is None else reference)[block])
    return labels


def labels_at(paints: Sequence[Paint], points: np.ndarray) -> np.ndarray:
    """The label each world point (n, 3) gets from ``paints``: the same rules as :func:`rasterize`."""
    x, y, z = (np.asarray(points, dtype=np.float32)[:, axis] for axis in range(3))
    labels = np.zeros(len(x), dtype=np.uint8)
    for paint in paints:
        _paint(paint, paint.shape.q(x, y, z), labels, labels)
    return labels


def _paint(paint: Paint, q: np.ndarray, target: np.ndarray, reference: np.ndarray) -> None:
    """Write ``paint``'s labels into ``target`` (in place) where q is under each threshold, within its hosts."""
    allowed = None if paint.within is None else np.isin(reference, paint.within)
    for threshold, label in paint.levels:
        selected = q < threshold
        if allowed is not None:
            selected &= allowed
        target[selected] = label
