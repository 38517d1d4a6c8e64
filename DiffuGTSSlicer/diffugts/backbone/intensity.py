"""Intensity conventions of the backbones: raw scanner values <-> the [0, 1] range the VAE expects.

Conventions (a config's ``intensity``, keyed by modality family, or by sequence for a sequence of its own):
``clip`` maps a fixed window (CT: HU); ``percentile`` maps the volume's own percentiles (MAISI's MR); ``robust``
(MR, any scanner scale) maps the image's floor to 0 and an upper percentile of the body or brain only (an Otsu
foreground, or everything but the fill value of a masked scan) to ``1 / (1 + headroom)``: the scale follows the
tissue, not the background's share nor a few hot voxels, a smooth bias field moves it little, and lesions
brighter than the tissue keep room below 1.
"""

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


def convention_for(intensity: dict[str, dict], modality: str) -> dict | None:
    """A config's convention for ``modality``: its sequence's own ('mr-flair'), else its family's, else None."""
    name = modality.lower()
    return intensity.get(name) or intensity.get(modality_family(modality))


def _sample(array: np.ndarray, size: int = 2_000_000) -> np.ndarray:
    flat = np.asarray(array).reshape(-1)
    values = flat[:: max(1, flat.size // size)].astype(np.float32)
    return values[np.isfinite(values)]


def foreground_values(values: np.ndarray) -> np.ndarray:
    """The body or brain of an MR's voxel values: all but a masked scan's fill value (one value holding a fifth
    of the voxels), else those above Otsu's threshold; everything when that leaves under 1%."""
    from ..evaluation.baselines import otsu_threshold

    uniques, counts = np.unique(values, return_counts=True)
    fill = uniques[int(np.argmax(counts))]
    kept = values[values != fill] if counts.max() >= 0.2 * values.size else values[values > otsu_threshold(values)]
    return kept if kept.size >= 0.01 * values.size else values


def intensity_map(convention: dict, array: np.ndarray) -> IntensityMap:
    """The map for one volume under a config's convention ('clip', 'percentile' or 'robust', see above)."""
    kind = convention.get("kind")
    if kind == "clip":
        low, high = (float(v) for v in convention["window"])
    elif kind == "percentile":
        low, high = (float(v) for v in np.percentile(array, convention["percentiles"]))
    elif kind == "robust":
        values = _sample(array)
        if values.size == 0:
            raise DiffuGTSError("the image has no finite value")
        floor_pct, upper_pct = (float(v) for v in convention.get("percentiles", (0.1, 99.5)))
        low = float(np.percentile(values, floor_pct))
        high = float(np.percentile(foreground_values(values), upper_pct))
        high = low + (high - low) * (1.0 + float(convention.get("headroom", 0.0)))
    else:
        raise DiffuGTSError(f"unknown intensity convention {kind!r}")
    return IntensityMap(low, high if high > low else low + 1.0)
