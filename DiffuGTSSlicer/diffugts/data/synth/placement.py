"""Where a lesion goes: a centre and size that fit the host region (inside it, on its surface, or at a depth),
and the region's outward normal there (for lesions that grow on an organ's surface)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ...io import Volume
from .recipes import BORDER, DEPTH, INSIDE, Recipe

SHRINK = 0.8  # a lesion that finds no room is tried again this much smaller, down to the recipe's smallest size
FOV_FRACTION = 0.6  # a lesion spans at most this fraction of the scan's smallest extent


@dataclass(frozen=True)
class Placement:
    center_ijk: np.ndarray  # float voxel index (i, j, k)
    center_lps: np.ndarray
    diameter_mm: float
    normal_lps: np.ndarray | None  # outward unit normal of the region (BORDER), else None


def region_depth(image: Volume, region: np.ndarray) -> np.ndarray:
    """Distance (mm) from each voxel of ``region`` to its surface; 0 outside."""
    return ndimage.distance_transform_edt(region, sampling=image.spacing[::-1]).astype(np.float32)


def place(rng: np.random.Generator, image: Volume, depth: np.ndarray, recipe: Recipe) -> Placement | None:
    """A random centre for a lesion of a random size from the recipe's range, or None when none fits."""
    low, high = recipe.diameter_mm
    extent = min(n * s for n, s in zip(image.size, image.spacing) if n > 1)
    high = min(high, FOV_FRACTION * extent)
    if high < low:
        return None
    diameter = float(np.exp(rng.uniform(np.log(low), np.log(high))))
    while True:
        ok = _allowed(depth, recipe, diameter / 2)
        if ok.any():
            break
        if diameter <= low:
            return None
        diameter = max(low, diameter * SHRINK)
    flat = np.flatnonzero(ok)
    k, j, i = np.unravel_index(flat[rng.integers(flat.size)], depth.shape)
    ijk = np.array([i, j, k], dtype=float) + rng.uniform(-0.3, 0.3, size=3)
    center = (image.grid.ijk_to_lps @ np.append(ijk, 1.0))[:3]
    normal = _outward_normal(image, depth, (k, j, i)) if recipe.placement == BORDER else None
    return Placement(ijk, center, diameter, normal)


def _allowed(depth: np.ndarray, recipe: Recipe, radius: float) -> np.ndarray:
    if recipe.placement == INSIDE:
        return depth >= max(recipe.inside_fraction * radius, 1e-3)
    if recipe.placement == BORDER:
        low, high = recipe.border_depth
        return (depth > max(low * radius, 0.0)) & (depth <= high * radius)
    if recipe.placement == DEPTH:
        return (depth >= radius + recipe.depth_mm[0]) & (depth <= radius + recipe.depth_mm[1])
    raise ValueError(f"unknown placement {recipe.placement!r}")


def _outward_normal(image: Volume, depth: np.ndarray, kji: tuple[int, int, int]) -> np.ndarray:
    """The unit vector (LPS) out of the region at a voxel: against the gradient of the depth, smoothed."""
    box = tuple(slice(max(c - 4, 0), c + 5) for c in kji)
    local = ndimage.gaussian_filter(depth[box].astype(np.float64), 1.5)
    centre = tuple(c - b.start for c, b in zip(kji, box))
    gradient_kji = [np.gradient(local, axis=axis)[centre] if local.shape[axis] > 1 else 0.0 for axis in range(3)]
    per_mm_ijk = np.array(gradient_kji[::-1]) / np.asarray(image.spacing)
    world = image.direction @ per_mm_ijk
    norm = np.linalg.norm(world)
    if norm < 1e-9:
        world, norm = image.direction[:, 2], 1.0
    return -world / norm
