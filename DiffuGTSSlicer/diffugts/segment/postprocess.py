"""From a probability map to the mask a user edits: threshold, organ restriction, holes, small components."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..io import Volume


def binary_mask(probability: Volume, threshold: float, *, organ: np.ndarray | None = None,
                fill_holes: bool = True, min_component_mm3: float = 0.0) -> tuple[Volume, int]:
    """The post-processed uint8 mask on ``probability``'s grid, and its number of connected components."""
    mask = probability.array > threshold
    if organ is not None:
        mask &= organ
    if fill_holes and mask.any():
        mask = ndimage.binary_fill_holes(mask)
        if organ is not None:
            mask &= organ
    labels, count = ndimage.label(mask)
    if count and min_component_mm3 > 0:
        voxel_mm3 = float(np.prod(probability.spacing))
        sizes = np.bincount(labels.ravel())[1:] * voxel_mm3
        keep = np.flatnonzero(sizes >= min_component_mm3) + 1
        mask = np.isin(labels, keep)
        count = len(keep)
    return probability.like(mask.astype(np.uint8), modality="mask"), int(count)


def presence_score(probability: Volume, volume_mm3: float, organ: np.ndarray | None = None) -> float:
    """Mean probability of the ``volume_mm3`` most likely voxels (inside ``organ`` when given)."""
    values = probability.array[organ] if organ is not None else probability.array.ravel()
    if values.size == 0:
        return 0.0
    count = int(np.clip(round(volume_mm3 / float(np.prod(probability.spacing))), 1, values.size))
    return float(np.partition(values, values.size - count)[values.size - count:].mean())


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in bits of a Bernoulli probability: 0 when certain, 1 at p = 0.5."""
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return (-(p * np.log2(p) + (1 - p) * np.log2(1 - p))).astype(np.float32)
