"""Synthetic CT and MR tumor phantoms with exact geometry: ``make_phantom(category, modality, size, seed)``.

Anatomy and tumors are implicit shapes in world millimetres; a random scanner grid (spacing
0.6-5 mm, any axis order and flips, sometimes oblique) is placed around the tumor and every map
(image, tumor mask, organ labels) is rasterized on that one grid. Same seed, same phantom.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ...errors import DiffuGTSError
from ...io import Volume
from ..categories import (CATEGORIES, HEAD_MODALITIES, HEALTHY, PHANTOM_CATEGORIES, TORSO_MODALITIES,
                          TumorCategory)
from .anatomy import FOV_RANGE_MM, HEAD, TORSO, build_head, build_torso
from .grid import random_grid, rasterize
from .render import combined_labels, render
from .tissues import T
from .tumors import PLANNERS, healthy

MAX_ATTEMPTS = 8


@dataclass
class Phantom:
    """One synthetic case: image, tumor mask and labels on one grid, plus its text metadata."""

    image: Volume
    mask: Volume  # uint8 0/1, the tumor as the prompt means it
    organs: Volume  # uint8 organ labels of the anatomy, as if there were no tumor
    labels: Volume  # uint8 organ labels with lesion compartments painted as 100 + kind (tissues.label_legend)
    category: str  # a key of CATEGORIES, or "healthy"
    prompt: str  # the category name; for a healthy case, a tumor the scan does not have (negative control)
    synonyms: tuple[str, ...]
    organ: str
    body_region: str
    modality: str
    seed: int

    def organ_mask(self, organ: str) -> Volume:
        """The anatomy's voxels of ``organ`` (an organ-prior name, e.g. "kidney", "bone"), tumors included where
        they lie in it; empty when the phantom has none of it."""
        labels = [T[name] for name in ORGAN_TISSUES.get(organ, (organ,)) if name in T]
        inside = np.isin(self.organs.array, labels)
        if self.organ == organ:
            inside |= self.mask.array > 0
        return self.organs.like(inside.astype(np.uint8))


# organ-prior names whose voxels are several phantom tissues
ORGAN_TISSUES = {"lung": ("lung", "lung vessel"), "liver": ("liver", "hepatic vessel"),
                 "bone": ("cortical bone", "bone marrow"), "colon": ("colon wall", "colon lumen"),
                 "brain": ("gray matter", "white matter", "ventricle", "csf")}


def allowed_modalities(category: str) -> tuple[str, ...]:
    if category == HEALTHY:
        return tuple(dict.fromkeys(TORSO_MODALITIES + HEAD_MODALITIES))
    return CATEGORIES[category].modalities


def choose_modality(rng: np.random.Generator, category: str, wanted: Sequence[str] | None) -> str:
    """A modality for ``category`` among ``wanted`` ("CT", "MR" for any MR sequence, or "MR-T2", ...)."""
    allowed = allowed_modalities(category)
    if wanted:
        allowed = tuple(m for m in allowed if m in wanted or ("MR" in wanted and m.startswith("MR-")))
    if not allowed:
        raise DiffuGTSError(
            f"no modality in {', '.join(wanted)} shows a {category}",
            hint=f"{category} phantoms come as {', '.join(allowed_modalities(category))}.",
        )
    return str(rng.choice(allowed))


def make_phantom(category: str | None = None, modality: str | Sequence[str] | None = None,
                 size: int | Sequence[int] = 128, seed: int = 0) -> Phantom:
    """A phantom of ``category`` (random when None) imaged as ``modality`` on ``size`` voxels (i, j, k)."""
    if category is not None and category not in PHANTOM_CATEGORIES:
        raise DiffuGTSError(f"unknown phantom category {category!r}",
                            hint=f"Choose from: {', '.join(PHANTOM_CATEGORIES)}.")
    sizes = (size,) * 3 if isinstance(size, int) else tuple(int(n) for n in size)
    if len(sizes) != 3 or min(sizes) < 8:
        raise DiffuGTSError(f"phantom size {sizes} is not three sizes of at least 8 voxels")
    rng = np.random.default_rng(seed)
    category = category or str(rng.choice(PHANTOM_CATEGORIES))
    wanted = [modality] if isinstance(modality, str) else modality
    modality = choose_modality(rng, category, wanted)
    for _ in range(MAX_ATTEMPTS):
        phantom = _attempt(rng, category, modality, sizes, seed)
        if category == HEALTHY or phantom.mask.array.any():
            return phantom
    raise DiffuGTSError(f"could not place a visible {category} on a {sizes} grid in {MAX_ATTEMPTS} attempts",
                        hint="Use a larger --size.")


def _attempt(rng: np.random.Generator, category: str, modality: str, size: tuple[int, int, int],
             seed: int) -> Phantom:
    head = category == "brain glioma" or (category == HEALTHY and modality == "MR-FLAIR") or \
        (category == HEALTHY and modality.startswith("MR") and rng.random() < 0.5)
    anatomy = build_head(rng) if head else build_torso(rng)
    plan = (healthy if category == HEALTHY else PLANNERS[category])(rng, anatomy)
    grid = random_grid(rng, size, plan.center, FOV_RANGE_MM[HEAD if head else TORSO])
    organs = rasterize(grid, anatomy.paints)
    lesions = rasterize(grid, plan.paints, reference=organs)
    labels = combined_labels(organs, lesions)
    mask = np.isin(lesions, plan.kinds_for(modality)).astype(np.uint8) if plan.paints else \
        np.zeros(grid.shape, dtype=np.uint8)
    info: TumorCategory | None = CATEGORIES.get(category)
    prompt = info.name if info else _negative_prompt(rng, head, modality)
    return Phantom(
        image=grid.volume(render(rng, grid, labels, modality), modality),
        mask=grid.volume(mask),
        organs=grid.volume(organs),
        labels=grid.volume(labels),
        category=category,
        prompt=prompt,
        synonyms=info.synonyms if info else (),
        organ=info.organ if info else CATEGORIES[prompt].organ,
        body_region=info.body_region if info else CATEGORIES[prompt].body_region,
        modality=modality,
        seed=seed,
    )


def _negative_prompt(rng: np.random.Generator, head: bool, modality: str) -> str:
    """A tumor category that fits a healthy scan's region and modality: the prompt it must answer "none" to."""
    fitting = [c.name for c in CATEGORIES.values()
               if c.phantom and (c.body_region == "brain") == head and modality in c.modalities]
    return str(rng.choice(fitting))
