"""From label maps to a scan: tissue intensities and texture, partial volume (blur by the voxel footprint
and the scanner's point spread), MR bias field, and CT Gaussian or MR Rician noise."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .grid import PhantomGrid
from .shapes import RandomField
from .tissues import LESION_OFFSET, lookup_tables

CT_RANGE = (-1024, 3071)
PSF_SIGMA_MM = 0.6


def combined_labels(organs: np.ndarray, lesions: np.ndarray) -> np.ndarray:
    """One map: the organ label, or LESION_OFFSET + lesion kind where there is a lesion."""
    return np.where(lesions > 0, lesions + np.uint8(LESION_OFFSET), organs).astype(np.uint8)


def render(rng: np.random.Generator, grid: PhantomGrid, labels: np.ndarray, modality: str) -> np.ndarray:
    """An int16 image of ``labels`` (combined map) as ``modality`` would show it."""
    mean, sd = lookup_tables(modality)
    image = mean[labels]
    image += sd[labels] * rng.standard_normal(labels.shape, dtype=np.float32)
    lesion_voxels = np.flatnonzero(labels >= LESION_OFFSET)
    if lesion_voxels.size:  # blotchy tumor heterogeneity, a few millimetres across
        blotches = RandomField(rng, 8.0)(*grid.points(lesion_voxels))
        image.reshape(-1)[lesion_voxels] += sd[labels.reshape(-1)[lesion_voxels]] * blotches
    spacing = np.asarray(grid.spacing)[::-1]  # numpy axes k, j, i
    sigma = np.sqrt(1 / 12 + (PSF_SIGMA_MM / spacing) ** 2)
    image = ndimage.gaussian_filter(image, sigma, truncate=3.0)
    if modality == "CT":
        voxel_ml = float(np.prod(grid.spacing))
        noise_sd = float(np.clip(rng.uniform(6, 18) / voxel_ml ** 0.25, 3, 40))
        image += noise_sd * rng.standard_normal(image.shape, dtype=np.float32)
        return np.clip(np.rint(image), *CT_RANGE).astype(np.int16)
    image *= rng.uniform(0.6, 1.6) * _bias_field(rng, image.shape)
    noise_sd = rng.uniform(0.01, 0.035) * float(np.percentile(image[::4, ::4, ::4], 99))
    real = image + noise_sd * rng.standard_normal(image.shape, dtype=np.float32)
    imaginary = noise_sd * rng.standard_normal(image.shape, dtype=np.float32)
    return np.clip(np.rint(np.sqrt(real * real + imaginary * imaginary)), 0, 32767).astype(np.int16)


def _bias_field(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    """A smooth multiplicative coil sensitivity field of about +-25%: a product of 1D quadratics."""
    field = np.ones(shape, dtype=np.float32)
    for axis, n in enumerate(shape):
        t = np.linspace(-1, 1, n, dtype=np.float32)
        log_profile = rng.uniform(-0.15, 0.15) * t + rng.uniform(-0.1, 0.1) * (t * t - 1 / 3)
        field *= np.exp(log_profile).reshape([-1 if a == axis else 1 for a in range(3)])
    return field
