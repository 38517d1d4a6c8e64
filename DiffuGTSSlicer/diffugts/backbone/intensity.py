"""Intensity conventions of the backbones: raw scanner values <-> the [0, 1] range the VAE expects."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DiffuGTSError


@dataclass(frozen=True)
class IntensityMap:
    """A linear map raw -> [0, 1] (clipped) and its inverse."""

    low: float
    high: float

    def forward(self, array: np.ndarray) -> np.ndarray:
        scaled = (np.asarray(array, dtype=np.float32) - self.low) / (self.high - self.low)
        return np.clip(scaled, 0.0, 1.0).astype(np.float32)

    def inverse(self, array: np.ndarray) -> np.ndarray:
        raw = np.multiply(array, self.high - self.low, dtype=np.float32)
        raw += self.low
        return raw


def modality_family(modality: str) -> str:
    """'ct' or 'mr' from the engine's modality names (CT, MR-T1c, mri_flair, ...)."""
    name = modality.lower()
    if name.startswith("ct"):
        return "ct"
    if name.startswith("mr"):
        return "mr"
    return name


def intensity_map(convention: dict, array: np.ndarray) -> IntensityMap:
    """The map for one volume under a config's convention ('clip' window or 'percentile' range)."""
    kind = convention.get("kind")
    if kind == "clip":
        low, high = (float(v) for v in convention["window"])
    elif kind == "percentile":
        low, high = (float(v) for v in np.percentile(array, convention["percentiles"]))
        if high <= low:
            high = low + 1.0
    else:
        raise DiffuGTSError(f"unknown intensity convention {kind!r}")
    return IntensityMap(low, high)
