"""Texture matched to the host: its noise measured (robust SD of a high-pass, and its grain), filtered noise
with the same SD and grain, and a smooth heterogeneity field for tumors that are not uniform."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

MAD_TO_SD = 1.4826
QUARTILE_TO_SD = 1 / 0.3186  # the lower quartile of |x| for a normal x is 0.3186 SD
HIGH_PASS_SIGMA_VOXELS = 1.0  # the high-pass is the image minus its Gaussian blur of this width
GRAIN_SIGMA_VOXELS = 2.5  # the wider high-pass that neighbour differences are compared with (the grain)
GRAIN_SIGMAS = (0.3, 0.5, 0.7, 0.9, 1.2)  # the synthetic noise's correlation widths (voxels) to choose from
HETEROGENEITY_MM = 3.0  # the scale of the smooth tumor texture
MIN_VOXELS = 50


def high_pass(values: np.ndarray, width: float = HIGH_PASS_SIGMA_VOXELS) -> np.ndarray:
    sigma = [width if n > 1 else 0.0 for n in values.shape]
    return values - ndimage.gaussian_filter(values.astype(np.float32), sigma)


@dataclass(frozen=True)
class Noise:
    """A scan's noise: ``sd`` the robust SD of its high-pass, ``step`` that of neighbour differences, ``grain``
    ``step`` over the robust SD of a wider high-pass (1.4 for white noise, smaller for smoother noise, as in
    resampled scans)."""

    sd: float
    step: float
    grain: float


def measure_noise(values: np.ndarray, region: np.ndarray) -> Noise:
    """The noise inside ``region``'s interior. Robust SDs from the lower quartile of absolute deviations: edges
    (grey/white matter, gas in bowel) widen the upper tail, so the lower quartile sees the noise where a
    median (MAD) would already count the anatomy."""
    interior = ndimage.binary_erosion(region, iterations=1)
    if interior.sum() < MIN_VOXELS:
        interior = region
    if interior.sum() < MIN_VOXELS or values.shape[-1] < 2:
        return Noise(0.0, 0.0, 0.0)
    values = values.astype(np.float32)
    sd, wide = _robust_sd(high_pass(values)[interior]), _robust_sd(high_pass(values, GRAIN_SIGMA_VOXELS)[interior])
    step = _robust_sd(np.diff(values, axis=-1)[interior[..., 1:] & interior[..., :-1]])
    return Noise(sd, step, step / wide if wide > 0 else 0.0)


def matched_noise(rng: np.random.Generator, shape: tuple[int, ...], noise: Noise) -> np.ndarray:
    """Gaussian noise filtered to the host's grain and scaled to its neighbour differences (both measured as
    above: anatomy left in the measurement makes the grain look smoother, never the steps larger by much)."""
    sigma_voxels = min(GRAIN_SIGMAS, key=lambda sigma: abs(_grain_of(sigma) - noise.grain))
    sigma = [sigma_voxels if n > 1 else 0.0 for n in shape]
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    field -= field.mean()
    measured = measure_noise(field, np.ones(shape, dtype=bool)).step
    return (field * np.float32(noise.step / measured if measured > 0 else 0.0)).astype(np.float32)


@lru_cache(maxsize=None)
def _grain_of(sigma_voxels: float) -> float:
    """The grain of white noise filtered by a Gaussian of ``sigma_voxels`` (on a fixed calibration cube)."""
    field = ndimage.gaussian_filter(np.random.default_rng(0).standard_normal((40, 40, 40)).astype(np.float32),
                                    sigma_voxels)
    return measure_noise(field, np.ones(field.shape, dtype=bool)).grain


def _robust_sd(values: np.ndarray) -> float:
    return float(QUARTILE_TO_SD * np.quantile(np.abs(values - np.median(values)), 0.25))


def smooth_field(rng: np.random.Generator, shape: tuple[int, ...], spacing_kji: tuple[float, float, float],
                 scale_mm: float = HETEROGENEITY_MM) -> np.ndarray:
    """A smooth random field of unit SD whose features are about ``scale_mm`` across."""
    sigma = [scale_mm / s if n > 1 else 0.0 for n, s in zip(shape, spacing_kji)]
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    sd = float(field.std())
    return (field / sd if sd > 0 else field).astype(np.float32)
