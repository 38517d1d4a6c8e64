"""From a probability map to the mask a user edits: threshold, organ restriction, holes, small components."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..io import Volume


def binary_mask(probability: Volume, threshold: float, *, organ: np.ndarray | None = None,
                fill_holes: bool = True, min_component_mm3: float = 0.0, keep: np.ndarray | None = None,
                remove: np.ndarray | None = None, keep_only: bool = False) -> tuple[Volume, int]:
    """The post-processed uint8 mask on ``probability``'s grid, and its number of connected components;
    components touching ``remove`` go, those touching ``keep`` stay whatever their size (booleans [k, j, i]);
    ``keep_only``: no other component stays."""
    full = probability.array > threshold
    if organ is not None:
        full &= organ
    out = np.zeros(full.shape, np.uint8)
    box = _bounding_box(full)
    if box is None:
        return probability.like(out, modality="mask"), 0
    # in the mask's bounding box: the same components, and background on its faces is not a hole (it
    # touches the background outside the box, or the volume's border)
    mask = full[box]
    inside = organ[box] if organ is not None else None
    if fill_holes:
        mask = filled(mask)
        if inside is not None:
            mask &= inside
    labels, count = ndimage.label(mask)
    if count and (min_component_mm3 > 0 or keep is not None or remove is not None):
        voxel_mm3 = float(np.prod(probability.spacing))
        chosen = np.bincount(labels.ravel(), minlength=count + 1)[1:] * voxel_mm3 >= min_component_mm3
        if remove is not None:
            chosen[_touched(labels, remove[box], count)] = False
        if keep is not None:  # touched by both: kept
            touched = _touched(labels, keep[box], count)
            if keep_only:
                chosen[:] = False
            chosen[touched] = True
        kept = np.flatnonzero(chosen) + 1
        mask = np.isin(labels, kept)
        count = len(kept)
    out[box] = mask
    return probability.like(out, modality="mask"), int(count)


def _touched(labels: np.ndarray, where: np.ndarray, count: int) -> np.ndarray:
    """Indices (0-based) of the components of ``labels`` with a voxel in ``where``."""
    touched = np.unique(labels[where])
    return touched[(touched > 0) & (touched <= count)] - 1


def _bounding_box(mask: np.ndarray) -> tuple[slice, ...] | None:
    """The bounding box of ``mask``; None when ``mask`` is empty."""
    box = []
    for axis in range(mask.ndim):
        hits = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        if hits.size == 0:
            return None
        box.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)


def filled(mask: np.ndarray) -> np.ndarray:
    """``mask`` with its holes filled, as scipy's binary_fill_holes does (background not 6-connected to the
    array's border), found by labelling the background once instead of dilating from the border until stable."""
    background, _ = ndimage.label(~mask)
    faces = [np.take(background, index, axis) for axis in range(mask.ndim) for index in (0, -1)]
    outside = np.unique(np.concatenate([face.ravel() for face in faces]))
    return ~np.isin(background, outside[outside > 0])


def presence_score(probability: Volume, volume_mm3: float, organ: np.ndarray | None = None) -> float:
    """Mean probability of the ``volume_mm3`` most likely voxels (inside ``organ`` when given)."""
    values = probability.array[organ] if organ is not None else probability.array.ravel()
    if values.size == 0:
        return 0.0
    count = int(np.clip(round(volume_mm3 / float(np.prod(probability.spacing))), 1, values.size))
    return float(np.partition(values, values.size - count)[values.size - count:].mean())


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy in bits of a Bernoulli probability: 0 when certain, 1 at p = 0.5."""
    p = np.clip(p, 1e-6, 1 - 1e-6).astype(np.float32, copy=False)
    q = 1 - p
    entropy = np.log2(p)
    entropy *= p
    p = np.log2(q, out=p)  # in place: fresh pages are slow to fault in, and these are whole volumes
    p *= q
    entropy += p
    return np.negative(entropy, out=entropy)
