"""Comparing volumes by content: an exact fingerprint, one volume inside another, near-identical twins.

All on RAS-reoriented volumes (diffugts.io.to_ras), so the same scan written in another orientation or
data type compares equal.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ...io import Grid, Volume

NEAR_DUPLICATE_CORRELATION = 0.99
_PROBES = 16
_SPACING_TOLERANCE = 1e-3
_DIRECTION_TOLERANCE = 1e-4


def fingerprint(volume: Volume) -> str:
    """sha256 over the voxel values (independent of the stored data type) and the grid."""
    array = volume.array
    integral = np.issubdtype(array.dtype, np.integer) or bool(
        np.all(np.isfinite(array)) and np.all(array == np.round(array)))
    as_type = np.int64 if integral else np.float64
    digest = hashlib.sha256(_grid_text(volume.grid).encode())
    for plane in array:  # one slice at a time: no full-size copy
        digest.update(np.ascontiguousarray(plane, dtype=as_type).tobytes())
    return digest.hexdigest()


def _grid_text(grid: Grid) -> str:
    def rounded(values: tuple[float, ...], decimals: int) -> list[float]:
        return (np.round(values, decimals) + 0.0).tolist()  # + 0.0: -0.0 and 0.0 read the same

    return f"{grid.size}|{rounded(grid.spacing, 4)}|{rounded(grid.origin, 3)}|{rounded(grid.direction, 5)}"


def same_lattice(a: Grid, b: Grid) -> bool:
    """Same voxel spacing and axis directions: one could be a block of the other."""
    return (np.allclose(a.spacing, b.spacing, rtol=0, atol=_SPACING_TOLERANCE)
            and np.allclose(a.direction, b.direction, rtol=0, atol=_DIRECTION_TOLERANCE))


def fits_inside(small: Grid, big: Grid) -> bool:
    return same_lattice(small, big) and all(s <= b for s, b in zip(small.size, big.size))


def find_block(small: np.ndarray, big: np.ndarray) -> tuple[int, int, int] | None:
    """The [k, j, i] offset at which ``small`` equals a block of ``big`` voxel for voxel, or None.

    The header is not trusted (a crop may keep its parent's origin): the offset is found from the voxels,
    starting from the probe value that is rarest in ``big``, then checked on every probe and the whole block.
    """
    if any(s > b for s, b in zip(small.shape, big.shape)):
        return None
    rng = np.random.default_rng(0)
    probes = np.stack([rng.integers(0, n, _PROBES) for n in small.shape], axis=1)
    probes = np.vstack([probes, np.asarray(small.shape) // 2])
    values = small[tuple(probes.T)]
    counts = [int(np.count_nonzero(big == value)) for value in values]
    anchor = int(np.argmin(counts))
    if counts[anchor] == 0:
        return None
    offsets = np.argwhere(big == values[anchor]) - probes[anchor]
    limit = np.asarray(big.shape) - np.asarray(small.shape)
    offsets = offsets[np.all((offsets >= 0) & (offsets <= limit), axis=1)]
    for probe, value in zip(probes, values):
        if len(offsets) == 0:
            return None
        offsets = offsets[big[tuple((offsets + probe).T)] == value]
    for offset in offsets:
        k, j, i = (int(o) for o in offset)
        block = big[k:k + small.shape[0], j:j + small.shape[1], i:i + small.shape[2]]
        if np.array_equal(block, small):
            return k, j, i
    return None


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two same-shape arrays (0 when either is constant)."""
    x = a.astype(np.float64).ravel()
    y = b.astype(np.float64).ravel()
    x -= x.mean()
    y -= y.mean()
    norm = float(np.sqrt((x @ x) * (y @ y)))
    return float(x @ y) / norm if norm > 0 else 0.0
