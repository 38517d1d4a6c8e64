"""Organ priors: a probability map, on the input's exact grid, of where the organ a prompt names lies.

CT: body, lung (and left/right lung), bone by rule (:mod:`.ct_rules`, method "rule"); abdominal organs by
multi-atlas registration (:mod:`.atlas`, method "atlas"), sharpened by the scan's intensities (:mod:`.refine`). MR: head and body as the foreground (method
"foreground"); brain as the foreground of a skull-stripped scan, else by template registration
(:mod:`.brain`, method "template"). Any other organ gets the body (method "body") and a note that says so.
A user's organ mask always wins (:func:`user_prior`, method "user").
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..io import Volume
from . import brain, ct_rules
from .atlas import AtlasPriors, atlas_organs, atlases
from .grid import as_volume, like_working, to_input_grid, working_image
from .refine import refine
from .register import registrable

RULE_MM = (2.0, 3.0)  # the CT rules' grid: the scan's finest spacing, kept within these bounds
MR_MM = 3.0
CT_AIR = -1024.0
TOO_SMALL = "the image is too small to register an atlas to"


@dataclass
class OrganPrior:
    """An organ's probability (float32 in [0, 1] on the image's grid), how it was made, and how long it took."""

    organ: str
    probability: Volume
    method: str
    note: str
    seconds: float

    def mask(self, threshold: float = 0.5) -> Volume:
        """The prior as a uint8 0/1 mask: probability at or above ``threshold``."""
        return self.probability.like((self.probability.array >= threshold).astype(np.uint8), modality="mask")


def organ_prior(image: Volume, organ: str, *, modality: str | None = None) -> OrganPrior:
    """The prior of one organ (a vocabulary name, "body", "head", "left lung" or "right lung")."""
    return organ_priors(image, [organ], modality=modality)[0]


def organ_priors(image: Volume, organs: Sequence[str], *, modality: str | None = None,
                 exclude_patients: Collection[str] = ()) -> list[OrganPrior]:
    """Priors for several organs of one image; atlas registrations are shared between them.

    ``exclude_patients``: atlases of these patients are not used (leave-one-patient-out evaluation)."""
    priors = OrganPriors(image, modality=modality, exclude_patients=exclude_patients)
    return [priors.prior(organ) for organ in organs]


class OrganPriors:
    """The priors of one image, made on demand: what organs share (the working grids, the atlas registrations)
    is made once, by the first organ that needs it, and kept for the next (a second prompt on a scan registers
    no atlas again). ``exclude_patients``: atlases of these patients are not used."""

    def __init__(self, image: Volume, *, modality: str | None = None, exclude_patients: Collection[str] = ()) -> None:
        start = time.perf_counter()
        if not np.ptp(image.array):
            raise InputError("the image is constant: no organ can be found in it", path=image.source,
                             hint="Check that the right file was given (not an empty or blank volume).")
        self.image = image
        kind = "CT" if (modality or image.modality).upper().startswith("CT") else "MR"
        self._builder = _CtPriors(image, exclude_patients) if kind == "CT" else _MrPriors(image)
        self._setup = time.perf_counter() - start  # counted in the first organ's seconds

    def prior(self, organ: str) -> OrganPrior:
        """One organ's prior (a vocabulary name, "body", "head", "left lung" or "right lung"); its seconds
        include the shared work it was the first to need."""
        start = time.perf_counter()
        probability, method, note = self._builder.make(" ".join(organ.lower().split()))
        prior = OrganPrior(organ, to_input_grid(probability, self.image), method, note,
                           time.perf_counter() - start + self._setup)
        self._setup = 0.0
        return prior


def user_prior(image: Volume, organ: str, mask: Volume) -> OrganPrior:
    """A user's organ mask (nonzero = organ) as the prior; it must lie on the image's grid."""
    if not mask.grid.matches(image.grid, tolerance=1e-3):
        raise InputError("the organ mask is not on the image's grid", path=mask.source,
                         hint="Export the organ segment on the image's geometry (in Slicer: Export to labelmap "
                              "with the image as reference volume).")
    probability = image.like((mask.array != 0).astype(np.float32), modality="probability")
    return OrganPrior(organ, probability, "user", "the user's organ mask", 0.0)


def body_note(organ: str, kind: str) -> str:
    return f"no prior for {organ!r} on {kind}: the body is used"


class _CtPriors:
    def __init__(self, image: Volume, exclude_patients: Collection[str]) -> None:
        self.image = image
        self.chosen = tuple(a for a in atlases("CT") if a.patient not in exclude_patients)
        self._working: sitk.Image | None = None
        self._atlas: AtlasPriors | None = None

    def _grid(self) -> sitk.Image:
        """The scan on the working grid of the rules and the atlas refinement (2-3 mm; made once): 2 mm
        keeps ribs and the aorta's edge on a fine scan (bone Dice 0.62 -> 0.71 on a 1 mm CT), and a 3 mm scan
        stays at 3 mm (upsampling it cost the lungs 0.05-0.11 Dice)."""
        if self._working is None:
            spacing = min(RULE_MM[1], max(RULE_MM[0], min(self.image.spacing)))
            self._working = working_image(self.image, spacing, CT_AIR)
        return self._working

    def _rule(self, organ: str) -> sitk.Image:
        mask = ct_rules.rule_mask(as_volume(self._grid(), "CT"), organ)
        return like_working(ct_rules.soften(mask), self._grid())

    def _atlas_prior(self, organ: str) -> sitk.Image:
        """The atlases' prior of ``organ``, sharpened by the scan's intensities on the rules' grid."""
        grid = self._grid()
        coarse = sitk.Resample(self._atlas.probability(organ), grid, sitk.Transform(), sitk.sitkLinear, 0.0)
        ct = sitk.GetArrayViewFromImage(grid)
        voxel_ml = float(np.prod(grid.GetSpacing())) / 1000.0
        return like_working(refine(sitk.GetArrayFromImage(coarse), ct, voxel_ml), grid)

    def make(self, organ: str) -> tuple[sitk.Image, str, str]:
        if organ in ct_rules.RULE_ORGANS:
            return self._rule(organ), "rule", ""
        if organ in atlas_organs():
            if self._atlas is None:
                self._atlas = AtlasPriors(self.image, self.chosen)
            if not registrable(self._atlas.working):
                return self._rule("body"), "body", f"{TOO_SMALL}: no {organ} prior, the body is used"
            probability = self._atlas_prior(organ)
            seen = float(sitk.GetArrayViewFromImage(probability).max()) >= 0.5
            return probability, "atlas", "" if seen else f"the atlases place no {organ} inside this field of view"
        return self._rule("body"), "body", body_note(organ, "CT")


class _MrPriors:
    def __init__(self, image: Volume) -> None:
        self.image = image
        self.working = working_image(image, MR_MM, float(image.array.min()))
        self.head = brain.foreground(self.working)

    def make(self, organ: str) -> tuple[sitk.Image, str, str]:
        soft = like_working(ct_rules.soften(self.head), self.working)
        if organ in ("head", "body"):
            return soft, "foreground", ""
        if organ == "brain":
            if brain.is_skull_stripped(self.working, self.head):
                stripped = like_working(ct_rules.soften(brain.stripped_brain(self.working)), self.working)
                return stripped, "foreground", "skull-stripped scan: the brain is its foreground"
            if not registrable(self.working):
                return soft, "body", f"{TOO_SMALL}: no brain prior, the body is used"
            if brain.is_head(self.working, self.head):
                return brain.template_brain(self.working, self.head), "template", ""
            return soft, "body", "the scan is not a head: no brain prior, the body is used"
        return soft, "body", body_note(organ, "MR")
