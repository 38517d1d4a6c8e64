"""Volumes on awkward grids (LPS, RAS, oblique, permuted; anisotropic) for geometry tests."""

from __future__ import annotations

import numpy as np

from diffugts.io import Volume


def rotation(axis: tuple[float, float, float], degrees: float) -> np.ndarray:
    """Rotation matrix about ``axis`` (Rodrigues)."""
    a = np.asarray(axis, dtype=float)
    a /= np.linalg.norm(a)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    t = np.radians(degrees)
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * k @ k


DIRECTIONS = {
    "LPS": np.eye(3),
    "RAS": np.diag([-1.0, -1.0, 1.0]),
    "sagittal": np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),
    "oblique": rotation((1, 2, 3), 30) @ np.diag([-1.0, 1.0, 1.0]),
    "oblique45": rotation((0, 0, 1), 45),
}


def make_volume(direction: str, dtype: str = "int16", shape_kji: tuple[int, int, int] = (7, 9, 11),
                seed: int = 0) -> Volume:
    """A random volume with anisotropic spacing and an off-centre origin.

    Spacing and origin are float32-representable, so that NIfTI (which stores them as float32)
    can round-trip them within 1e-6; see test_nifti_stores_geometry_as_float32 for the other case.
    """
    rng = np.random.default_rng(seed)
    if np.issubdtype(np.dtype(dtype), np.floating):
        array = rng.normal(0, 100, size=shape_kji).astype(dtype)
    else:
        info = np.iinfo(dtype)
        array = rng.integers(max(info.min, -1024), min(info.max, 3071), size=shape_kji, endpoint=True).astype(dtype)
    spacing = tuple(float(np.float32(s)) for s in (0.7, 1.3, 4.9))
    origin = tuple(float(np.float32(o)) for o in (-123.456, 45.678, -678.125))
    return Volume(array, spacing, origin, DIRECTIONS[direction])


def world_points(volume: Volume) -> np.ndarray:
    """LPS position of every voxel, shaped like the array plus a trailing axis of 3."""
    k, j, i = np.meshgrid(*[np.arange(n) for n in volume.array.shape], indexing="ij")
    ijk = np.stack([i, j, k, np.ones_like(i)], axis=-1).astype(float)
    return (ijk @ volume.grid.ijk_to_lps.T)[..., :3]
