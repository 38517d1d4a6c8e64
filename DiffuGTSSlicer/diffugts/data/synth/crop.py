"""The block of a scan around a lesion: its index slices, voxel centres in world mm, and the mass-effect warp."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ...io import Volume


@dataclass
class Crop:
    """Voxels [k, j, i] of ``block`` with their LPS coordinates, distance and direction from ``center``."""

    block: tuple[slice, slice, slice]
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    center: np.ndarray
    distance: np.ndarray  # mm from the centre
    extent: np.ndarray  # the voxel's width (mm) along the direction from the centre

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.x.shape


def crop_around(image: Volume, center_lps: np.ndarray, radius_mm: float) -> Crop:
    """The voxels within a box of half-size ``radius_mm`` around ``center_lps`` (clipped to the scan)."""
    affine = image.grid.ijk_to_lps
    inverse = np.linalg.inv(affine[:3, :3])
    center_ijk = inverse @ (center_lps - affine[:3, 3])
    half = radius_mm * np.abs(inverse).sum(axis=1)  # index half-widths that hold the sphere, for any direction
    low = np.maximum(np.floor(center_ijk - half).astype(int), 0)
    high = np.minimum(np.ceil(center_ijk + half).astype(int) + 1, np.asarray(image.size))
    block = (slice(low[2], high[2]), slice(low[1], high[1]), slice(low[0], high[0]))
    k, j, i = np.meshgrid(*(np.arange(b.start, b.stop, dtype=np.float64) for b in block), indexing="ij")
    world = [affine[row, 0] * i + affine[row, 1] * j + affine[row, 2] * k + affine[row, 3] for row in range(3)]
    offset = [w - c for w, c in zip(world, center_lps)]
    distance = np.sqrt(offset[0] ** 2 + offset[1] ** 2 + offset[2] ** 2)
    safe = np.maximum(distance, 1e-6)
    steps = affine[:3, :3]  # columns: one voxel step along i, j, k in LPS mm
    extent = sum(np.abs(offset[0] * steps[0, a] + offset[1] * steps[1, a] + offset[2] * steps[2, a]) for a in range(3))
    extent = np.where(distance > 1e-6, extent / safe, float(np.min(image.spacing)))
    x, y, z = (w.astype(np.float32) for w in world)
    return Crop(block, x, y, z, np.asarray(center_lps, dtype=np.float32), distance.astype(np.float32),
                extent.astype(np.float32))


def push_outward(image: Volume, crop: Crop, radius_mm: float, push_mm: float, decay_mm: float,
                 arrays: list[np.ndarray], orders: list[int]) -> list[np.ndarray]:
    """Mass effect: each array (a crop of the scan, float for order 1) with tissue displaced away from the centre.

    A voxel at distance r takes the value found at r - s(r) along the same ray: s = push * r / R inside the
    lesion's radius R, decaying as push * exp(-(r - R) / decay) outside and tapered to 0 at the crop's edge, so
    the field is smooth, monotone (no folding while push < R and push < decay) and leaves the rest untouched.
    """
    r = crop.distance.astype(np.float64)
    edge = max(float(r.max()), radius_mm + 1e-3)
    shift = np.where(r <= radius_mm, push_mm * r / radius_mm, push_mm * np.exp(-(r - radius_mm) / decay_mm))
    shift *= np.clip((edge - r) / decay_mm, 0.0, 1.0)
    factor = np.where(r > 1e-6, (r - shift) / np.maximum(r, 1e-6), 1.0)
    affine = image.grid.ijk_to_lps
    inverse = np.linalg.inv(affine[:3, :3])
    source = [crop.center[a] + (w - crop.center[a]) * factor for a, w in enumerate((crop.x, crop.y, crop.z))]
    relative = [s - affine[a, 3] for a, s in enumerate(source)]
    ijk = [inverse[row, 0] * relative[0] + inverse[row, 1] * relative[1] + inverse[row, 2] * relative[2]
           for row in range(3)]
    starts = [b.start for b in crop.block]  # the source lies between the voxel and the centre: inside the crop
    coordinates = np.stack([ijk[2] - starts[0], ijk[1] - starts[1], ijk[0] - starts[2]])  # array axes k, j, i
    return [ndimage.map_coordinates(array, coordinates, order=order, mode="nearest").astype(array.dtype)
            for array, order in zip(arrays, orders)]
