"""One lesion synthesized into one host scan: placed, shaped, pushed into its surroundings, textured and
blended at partial-volume edges; the image keeps the host's grid and pixel type."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...io import Volume
from .crop import crop_around, push_outward
from .placement import Placement, place, region_depth
from .recipes import (ABSOLUTE, CALCIFICATION, CORE, DELTA, EDEMA, RATIO, TUMOR, Level, Recipe, looks_for)
from .shape import LesionShape, make_shape, occupancy
from .texture import Noise, matched_noise, measure_noise, smooth_field

ATTEMPTS = 6
MIN_STATS_VOXELS = 30
DECAY_RADII = 1.0  # the mass effect decays over about one lesion radius outside it
CALCIFIED_FRACTION = 0.06  # the share of a calcified lesion's volume in spots
MR_BACKGROUND_QUANTILE = 0.01
PARENCHYMA_HU = 150.0
SOFT_TISSUE_HU = (-200.0, 300.0)
EDEMA_FADE_MM = 4.0  # edema fades into the tissue over a few mm, unlike a tumor's edge


@dataclass
class Synthesized:
    """The host with a lesion: image (host dtype), tumor mask (uint8 0/1) and the organ region after mass effect
    (uint8 0/1, the lesion included), all on the host's grid; ``facts`` records what was drawn and measured."""

    image: Volume
    mask: Volume
    organ: Volume
    facts: dict[str, object]


def synthesize(rng: np.random.Generator, image: Volume, region: np.ndarray, modality: str, recipe: Recipe,
               placement_region: np.ndarray | None = None) -> Synthesized | None:
    """A ``recipe`` lesion in ``image`` inside (or on) ``region``; None when it does not fit this host."""
    looks = looks_for(recipe, modality)
    if looks is None:
        return None
    depth = region_depth(image, region if placement_region is None else placement_region)
    for _ in range(ATTEMPTS):
        placement = place(rng, image, depth, recipe)
        if placement is None:
            return None
        result = _compose(rng, image, region, modality, recipe, looks, placement)
        if result.mask.array.any():
            return result
    return None


def _compose(rng: np.random.Generator, image: Volume, region: np.ndarray, modality: str, recipe: Recipe,
             looks: dict[str, tuple[Level, ...]], placement: Placement) -> Synthesized:
    shape = make_shape(rng, recipe, placement.center_lps, placement.diameter_mm, placement.normal_lps)
    has_core = CORE in looks and placement.diameter_mm >= recipe.core_min_mm and rng.random() < recipe.core[0]
    core_level = rng.uniform(recipe.core[1], recipe.core[2]) if has_core else 0.0
    has_edema = EDEMA in looks and rng.random() < recipe.edema[0]
    edema = make_shape(rng, recipe, placement.center_lps, placement.diameter_mm, placement.normal_lps,
                       scale=rng.uniform(recipe.edema[1], recipe.edema[2])) if has_edema else None
    calcified = CALCIFICATION in looks and rng.random() < recipe.calcification
    push = rng.uniform(*recipe.mass_effect) * shape.radius
    decay = DECAY_RADII * shape.radius
    reach = max(shape.reach_mm(), edema.reach_mm() if edema else 0.0) + 3 * decay
    crop = crop_around(image, placement.center_lps, reach)

    host = image.array[crop.block].astype(np.float32)
    host_region = region[crop.block]
    moved, moved_region = push_outward(image, crop, shape.radius, push, decay,
                                       [host, host_region.astype(np.float32)], [1, 0])
    moved_region = moved_region > 0.5

    organ_value, host_noise, background = _host_statistics(image, region, crop, host, host_region, shape, modality)
    spacing_kji = image.spacing[::-1]
    noise = matched_noise(rng, crop.shape, host_noise)
    texture = smooth_field(rng, crop.shape, spacing_kji) * np.float32(rng.uniform(*recipe.heterogeneity) *
                                                                       host_noise.sd)

    q = shape.q(crop.x, crop.y, crop.z)
    radial = crop.distance / np.maximum(q, 1e-3)
    tumor = occupancy(q, 1.0, radial, crop.extent)
    drawn = {TUMOR: _draw(rng, looks[TUMOR], organ_value, background, modality)}
    values = drawn[TUMOR] + texture + noise
    if has_core:
        drawn[CORE] = _draw(rng, looks[CORE], organ_value, background, modality)
        core = occupancy(q, core_level, radial, crop.extent)
        values = (1 - core) * values + core * (drawn[CORE] + 0.3 * texture + noise)
    if calcified:
        drawn[CALCIFICATION] = _draw(rng, looks[CALCIFICATION], organ_value, background, modality)
        spots = smooth_field(rng, crop.shape, spacing_kji, scale_mm=max(1.0, 0.08 * shape.radius))
        threshold = np.quantile(spots[tumor > 0.5], 1 - CALCIFIED_FRACTION) if (tumor > 0.5).any() else np.inf
        calcium = np.clip((spots - threshold) * 2.0, 0.0, 1.0) * (q < 0.85)
        values = (1 - calcium) * values + calcium * (drawn[CALCIFICATION] + noise)
    surroundings = moved
    edema_fraction = np.zeros(crop.shape, dtype=np.float32)
    if edema is not None:
        drawn[EDEMA] = _draw(rng, looks[EDEMA], organ_value, background, modality)
        q_edema = edema.q(crop.x, crop.y, crop.z)
        edema_fraction = occupancy(q_edema, 1.0, crop.distance / np.maximum(q_edema, 1e-3),
                                   crop.extent + np.float32(EDEMA_FADE_MM))
        edema_fraction *= moved_region
        surroundings = _with_edema(moved, edema_fraction, drawn[EDEMA], organ_value, background, modality)
    blended = (1 - tumor) * surroundings + tumor * values
    masked = tumor >= 0.5
    if modality in recipe.masked_edema:
        masked |= edema_fraction >= 0.5

    out = image.array.copy()
    out[crop.block] = _cast(blended, image.array.dtype)
    mask = np.zeros(image.array.shape, dtype=np.uint8)
    mask[crop.block] = masked
    organ = region.astype(np.uint8)
    organ[crop.block] = moved_region | masked | (tumor >= 0.5)
    voxels = int(mask.sum())
    facts = {"diameter_mm": round(placement.diameter_mm, 1), "center_lps": [round(float(c), 1) for c in
                                                                            placement.center_lps],
             "volume_ml": round(voxels * image.voxel_volume_ml, 3), "host_organ_value": round(organ_value, 1),
             "host_noise_sd": round(host_noise.sd, 2), "host_noise_grain": round(host_noise.grain, 2),
             "push_mm": round(push, 1),
             "compartments": {name: round(float(v), 1) for name, v in drawn.items()},
             "core_fraction": round(core_level, 2) if has_core else 0.0, "calcified": calcified}
    return Synthesized(image.like(out), image.like(mask, modality="mask"), image.like(organ, modality="mask"), facts)


def _host_statistics(image: Volume, region: np.ndarray, crop, host: np.ndarray, host_region: np.ndarray,
                     shape: LesionShape, modality: str) -> tuple[float, Noise, float]:
    """The host organ's median and noise around the lesion (the whole organ's when too little of it is near), and
    the MR background level. On CT the noise is the scanner's, hardly tissue-dependent: measured where the scan
    is most uniform near the lesion (the organ's parenchyma within PARENCHYMA_HU of its median, or the soft
    tissue), since the colon holds gas and stool and the lung vessels and airways."""
    local = host_region & (crop.distance <= 3 * shape.radius + 10)
    enough = local.sum() >= MIN_STATS_VOXELS
    organ_value = float(np.median(host[local] if enough else image.array[region]))
    noise = measure_noise(host, host_region) if enough else Noise(0.0, 0.0, 0.0)
    if modality == "CT":  # the scanner's noise: in the most uniform of the organ's parenchyma and the soft tissue
        parenchyma = host_region & (np.abs(host - organ_value) < PARENCHYMA_HU)
        soft = (host > SOFT_TISSUE_HU[0]) & (host < SOFT_TISSUE_HU[1])
        found = [n for n in (measure_noise(host, parenchyma), measure_noise(host, soft)) if n.sd > 0]
        noise = min(found, key=lambda n: n.sd) if found else noise
    if noise.sd == 0.0:
        noise = measure_noise(image.array, region)
    background = 0.0 if modality == "CT" else float(np.quantile(image.array, MR_BACKGROUND_QUANTILE))
    return organ_value, noise, background


def _draw(rng: np.random.Generator, options: tuple[Level, ...], organ: float, background: float,
          modality: str) -> float:
    """A compartment's mean intensity, drawn from one of its options, relative to the host organ."""
    level = options[int(rng.integers(len(options)))]
    value = rng.uniform(level.low, level.high)
    if level.mode == ABSOLUTE:
        return float(value)
    if level.mode == DELTA:
        shifted = organ + value
        return float(max(shifted, level.floor) if level.floor is not None else shifted)
    if level.mode == RATIO:
        return float(background + value * (organ - background))
    raise ValueError(f"unknown intensity mode {level.mode!r} for {modality}")


def _with_edema(tissue: np.ndarray, fraction: np.ndarray, target: float, organ: float, background: float,
                modality: str) -> np.ndarray:
    """Edema changes the tissue's signal but keeps its structure: a shift on CT, a gain over background on MR."""
    if modality == "CT":
        return tissue + fraction * np.float32(target - organ)
    gain = (target - background) / max(organ - background, 1e-6)
    return background + (tissue - background) * (1 + fraction * np.float32(gain - 1))


def _cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Values in the host's pixel type: rounded and clipped for integer types."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)
