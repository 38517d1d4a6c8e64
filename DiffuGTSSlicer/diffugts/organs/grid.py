"""The coarse working grid organ priors are computed on, and the exact way back to the input's grid.

The working grid is axis-aligned in LPS (array axes: superior, posterior, left), covers the input's
bounding box and has isotropic voxels no finer than asked; an oblique or flipped input becomes a plain
axial stack there, so the rules can fill axial slices. Probabilities come back with linear interpolation
onto the input's exact grid (Volume.like), clipped to [0, 1].
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..io import Volume


def working_image(image: Volume, spacing_mm: float, background: float) -> sitk.Image:
    """``image`` resampled (box-averaged, then linear) onto an LPS-aligned grid of ``spacing_mm`` voxels."""
    source = sitk.GetImageFromArray(image.array.astype(np.float32, copy=False))
    source.SetSpacing(image.spacing)
    source.SetOrigin(image.origin)
    source.SetDirection(image.direction.ravel().tolist())
    factors = [max(1, min(n, int(spacing_mm // s))) for s, n in zip(image.spacing, image.size)]
    if max(factors) > 1:
        source = sitk.BinShrink(source, factors)  # averages whole blocks: anti-aliased and fast
    corners = np.array([[i, j, k, 1.0] for i in (-0.5, image.size[0] - 0.5) for j in (-0.5, image.size[1] - 0.5)
                        for k in (-0.5, image.size[2] - 0.5)]) @ image.grid.ijk_to_lps.T
    low, high = corners[:, :3].min(axis=0), corners[:, :3].max(axis=0)
    size = [max(1, int(np.ceil((b - a) / spacing_mm))) for a, b in zip(low, high)]
    reference = sitk.Image(size, sitk.sitkUInt8)
    reference.SetSpacing([spacing_mm] * 3)
    reference.SetOrigin((low + spacing_mm / 2).tolist())
    return sitk.Resample(source, reference, sitk.Transform(), sitk.sitkLinear, float(background), sitk.sitkFloat32)


def as_volume(image: sitk.Image, modality: str) -> Volume:
    """A working-grid SimpleITK image as a Volume (for the engine's numpy helpers such as body_mask)."""
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    return Volume(sitk.GetArrayFromImage(image), image.GetSpacing(), image.GetOrigin(), direction, modality=modality)


def like_working(array: np.ndarray, working: sitk.Image) -> sitk.Image:
    """A float32 SimpleITK image holding ``array`` on the working grid."""
    result = sitk.GetImageFromArray(array.astype(np.float32, copy=False))
    result.CopyInformation(working)
    return result


def to_input_grid(probability: sitk.Image, image: Volume) -> Volume:
    """A probability on any grid, resampled (linear) onto ``image``'s exact grid as float32 in [0, 1]."""
    reference = sitk.Image(list(image.size), sitk.sitkUInt8)
    reference.SetSpacing(image.spacing)
    reference.SetOrigin(image.origin)
    reference.SetDirection(image.direction.ravel().tolist())
    resampled = sitk.Resample(probability, reference, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    array = np.clip(sitk.GetArrayFromImage(resampled), 0.0, 1.0).astype(np.float32, copy=False)
    return image.like(array, modality="probability")
