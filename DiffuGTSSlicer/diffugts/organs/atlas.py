"""CT organ priors by multi-atlas registration: each shipped labelled CT is registered to the scan, and the
organ's warped, softened one-hot maps are averaged over the atlases that cover each voxel.

The scan is resampled to :data:`REGISTRATION_MM` mm (HU clipped to :data:`HU_RANGE`), each atlas is
registered to it (:func:`diffugts.organs.register.register`, correlation metric), and an organ's map is
resampled through the transform and softened by a Gaussian of :data:`SOFTEN_MM`. Where no atlas reaches (outside every atlas's
field of view), the probability is 0. Atlases: atlases/atlases.json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..io import Volume
from .ct_rules import filled_body
from .grid import as_volume, like_working, working_image
from .labels import LABEL_OF
from .register import register

ATLAS_DIR = Path(__file__).with_name("atlases")
REGISTRATION_MM = 5.0
HU_RANGE = (-200.0, 300.0)  # soft tissue and bone; air and fat alike (the body outline is not anatomy)
SOFTEN_MM = 3.0


@dataclass(frozen=True)
class Atlas:
    """One shipped atlas: its name, patient, modality, organs and files (see atlases/atlases.json)."""

    name: str
    patient: str
    modality: str
    organs: tuple[str, ...]
    image: Path
    labels: Path | None


@cache
def atlases(modality: str = "CT") -> tuple[Atlas, ...]:
    """The shipped atlases of one modality ("CT", or "MR" for the brain template)."""
    entries = json.loads((ATLAS_DIR / "atlases.json").read_text(encoding="utf-8"))
    return tuple(Atlas(e["name"], e["patient"], e["modality"], tuple(e["organs"]), ATLAS_DIR / e["image"],
                       ATLAS_DIR / e["labels"] if e["labels"] else None)
                 for e in entries if e["modality"] == modality)


def atlas_organs() -> frozenset[str]:
    """Every organ some CT atlas labels."""
    return frozenset(organ for atlas in atlases("CT") for organ in atlas.organs)


@cache
def _load(path: Path) -> sitk.Image:
    return sitk.ReadImage(str(path), sitk.sitkFloat32)


def _foreground(image: sitk.Image) -> sitk.Image:
    body = filled_body(as_volume(image, "CT")).astype(np.uint8)
    mask = sitk.GetImageFromArray(body)
    mask.CopyInformation(image)
    return mask


@dataclass
class Registered:
    """An atlas and the transform that maps the scan's working grid into it."""

    atlas: Atlas
    transform: sitk.Transform


class AtlasPriors:
    """Registers the atlases to one scan once, then gives any organ's probability on the working grid."""

    def __init__(self, image: Volume, chosen: tuple[Atlas, ...]) -> None:
        working = working_image(image, REGISTRATION_MM, -1024.0)
        self._body = _foreground(working)
        self.working = sitk.Clamp(working, sitk.sitkFloat32, *HU_RANGE)
        self._chosen = chosen
        self._registered: list[Registered] | None = None

    def registered(self) -> list[Registered]:
        """Each chosen atlas with its transform (registered on first use)."""
        if self._registered is None:
            self._registered = []
            for atlas in self._chosen:
                atlas_ct = _load(atlas.image)
                moving = sitk.Clamp(atlas_ct, sitk.sitkFloat32, *HU_RANGE)
                transform = register(self.working, moving, self._body, _foreground(atlas_ct), metric="correlation")
                self._registered.append(Registered(atlas, transform))
        return self._registered

    def probability(self, organ: str) -> sitk.Image:
        """The organ's probability on the working grid (0 where no atlas with the organ reaches)."""
        total = np.zeros(sitk.GetArrayViewFromImage(self.working).shape, np.float32)
        weight = np.zeros_like(total)
        for item in self.registered():
            if organ not in item.atlas.organs:
                continue
            labels = _load(item.atlas.labels)
            one_hot = sitk.Cast(labels == LABEL_OF[organ], sitk.sitkFloat32)
            warped = sitk.Resample(one_hot, self.working, item.transform, sitk.sitkLinear, 0.0)
            covered = sitk.Resample(one_hot * 0 + 1, self.working, item.transform, sitk.sitkLinear, 0.0)  # its reach
            total += sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(warped, SOFTEN_MM))
            weight += sitk.GetArrayFromImage(covered)
        probability = np.where(weight > 0.5, total / np.maximum(weight, 1e-6), 0.0)
        return like_working(np.clip(probability, 0, 1), self.working)
