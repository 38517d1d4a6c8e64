"""Orientation codes and the exact, invertible reorientation to RAS.

Canonicalization only permutes and flips voxel axes, so it never interpolates: the array is
bit-exact after a round trip and the grid is restored exactly (the original grid is kept).
An oblique residual rotation stays in the direction matrix; resampling to a model grid is a
separate, explicit step of the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .volume import Grid, Volume

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])
_POSITIVE = "RAS"
_NEGATIVE = "LPI"


def _axis_assignment(direction_lps: np.ndarray) -> tuple[list[int], list[int]]:
    """For voxel axes i, j, k: the RAS world axis each is closest to, and the sign along it.

    Axes are assigned greedily by largest absolute cosine, each world axis used once, so even a
    45-degree oblique grid gets a unique, deterministic code.
    """
    ras = _LPS_TO_RAS @ np.asarray(direction_lps, dtype=float).reshape(3, 3)
    cosines = np.abs(ras)
    world_of_axis = [-1, -1, -1]
    for _ in range(3):
        world, axis = np.unravel_index(np.argmax(cosines), cosines.shape)
        world_of_axis[axis] = int(world)
        cosines[world, :] = -1.0
        cosines[:, axis] = -1.0
    signs = [1 if ras[world_of_axis[axis], axis] >= 0 else -1 for axis in range(3)]
    return world_of_axis, signs


def orientation_code(direction_lps: np.ndarray) -> str:
    """Three letters naming where the i, j, k axes point (nibabel's convention: "RAS", "LPS", ...)."""
    worlds, signs = _axis_assignment(direction_lps)
    return "".join((_POSITIVE if s > 0 else _NEGATIVE)[w] for w, s in zip(worlds, signs))


@dataclass(frozen=True)
class Reorientation:
    """How a volume was reoriented to RAS, and how to go back exactly."""

    original: Grid
    axis_order: tuple[int, int, int]  # canonical axis a (i, j, k) is original axis axis_order[a]
    flipped: tuple[bool, bool, bool]  # whether canonical axis a runs opposite to its original axis

    def to_original(self, volume: Volume) -> Volume:
        """Bring a volume on the canonical grid (the result or any output) back onto the original grid."""
        array = volume.array
        for axis in range(3):
            if self.flipped[axis]:
                array = np.flip(array, axis=2 - axis)
        inverse = np.argsort(self.axis_order)
        array = np.transpose(array, [2 - int(inverse[2 - n]) for n in range(3)])
        grid = self.original
        return replace(
            volume,
            array=np.ascontiguousarray(array),
            spacing=grid.spacing,
            origin=grid.origin,
            direction=grid.direction_matrix,
        )


def to_ras(volume: Volume) -> tuple[Volume, Reorientation]:
    """Reorient so that i, j, k run towards R, A, S as closely as the grid allows."""
    worlds, signs = _axis_assignment(volume.direction)
    axis_order = tuple(worlds.index(w) for w in range(3))  # original axis that becomes canonical axis w
    flipped = tuple(signs[axis_order[a]] < 0 for a in range(3))

    # array is [k, j, i]: numpy axis n holds voxel axis 2 - n
    array = np.transpose(volume.array, [2 - axis_order[2 - n] for n in range(3)])
    for axis in range(3):
        if flipped[axis]:
            array = np.flip(array, axis=2 - axis)

    size = volume.size
    direction = volume.direction[:, list(axis_order)].copy()
    spacing = tuple(volume.spacing[o] for o in axis_order)
    corner = np.zeros(3)
    for axis in range(3):
        if flipped[axis]:
            direction[:, axis] *= -1.0
            original_axis = axis_order[axis]
            corner[original_axis] = size[original_axis] - 1
    origin = np.asarray(volume.origin) + volume.direction @ (np.asarray(volume.spacing) * corner)

    canonical = replace(
        volume,
        array=np.ascontiguousarray(array),
        spacing=spacing,
        origin=tuple(origin.tolist()),
        direction=direction,
    )
    return canonical, Reorientation(volume.grid, axis_order, flipped)
