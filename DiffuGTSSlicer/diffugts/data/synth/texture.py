"""Texture matched to the host: its noise measured as a robust SD of a high-pass, and filtered noise that has
the same high-pass SD, plus a smooth heterogeneity field for tumors that are not uniform."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

MAD_TO_SD = 1.4826
QUARTILE_TO_SD = 1 / 0.3186  # the lower quartile of |x| for a normal x is 0.3186 SD
HIGH_PASS_SIGMA_VOXELS = 1.0  # the high-pass is the image minus its Gaussian blur of this width
NOISE_SIGMA_VOXELS = 0.6  # the synthetic noise's correlation: scanners' noise is correlated over about a voxel
HETEROGENEITY_MM = 3.0  # the scale of the smooth tumor texture
MIN_VOXELS = 50


def high_pass(values: np.ndarray) -> np.ndarray:
    sigma = [HIGH_PASS_SIGMA_VOXELS if n > 1 else 0.0 for n in values.shape]
    return values - ndimage.gaussian_filter(values.astype(np.float32), sigma)


def noise_sd(values: np.ndarray, region: np.ndarray) -> float:
    """The noise SD inside ``region``: the lower quartile of the high-pass's absolute deviation over its interior,
    scaled to an SD. Edges (grey/white matter, gas in bowel) widen the upper tail, so the lower quartile
    measures the noise where a median (MAD) would already count the anatomy."""
    interior = ndimage.binary_erosion(region, iterations=1)
    if interior.sum() < MIN_VOXELS:
        interior = region
    if interior.sum() < MIN_VOXELS:
        return 0.0
    detail = high_pass(values.astype(np.float32))[interior]
    return float(QUARTILE_TO_SD * np.quantile(np.abs(detail - np.median(detail)), 0.25))


def matched_noise(rng: np.random.Generator, shape: tuple[int, ...], target_sd: float) -> np.ndarray:
    """Correlated Gaussian noise whose high-pass robust SD is ``target_sd`` (the host's, measured the same way)."""
    sigma = [NOISE_SIGMA_VOXELS if n > 1 else 0.0 for n in shape]
    noise = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    measured = noise_sd(noise, np.ones(shape, dtype=bool))
    return (noise * np.float32(target_sd / measured if measured > 0 else 0.0)).astype(np.float32)


def smooth_field(rng: np.random.Generator, shape: tuple[int, ...], spacing_kji: tuple[float, float, float],
                 scale_mm: float = HETEROGENEITY_MM) -> np.ndarray:
    """A smooth random field of unit SD whose features are about ``scale_mm`` across."""
    sigma = [scale_mm / s if n > 1 else 0.0 for n, s in zip(shape, spacing_kji)]
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    sd = float(field.std())
    return (field / sd if sd > 0 else field).astype(np.float32)
