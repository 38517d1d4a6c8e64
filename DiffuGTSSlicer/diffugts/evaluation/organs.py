"""Organ masks for evaluation: the case's own organ mask when its manifest names one, else the tissue label maps
that phantom sets carry beside each image.

A manifest's ``organ_mask`` column (synthesized-in-real sets write it: the host organ the tumor was placed in)
wins; it is used as given, nonzero = organ. A phantom set stores ``<image>_labels.nii.gz`` and
``tissue_labels.json`` (value -> tissue name); its organ mask is the organ's parenchyma plus every lesion
compartment (values >= 100), the way an organ segmentation that includes its tumor would be (KiTS-style kidney
labels). Vessels, lumen and cortex are left out. Real cases without either get the organ prior of the organ their
prompt names (:mod:`diffugts.organs`), the same region for every method; without a prior, None, and the methods
fall back to the body.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..data.case import Case
from ..data.phantom.tissues import LESION_OFFSET
from ..errors import InputError
from ..io import Volume, read_volume

TISSUE_LEGEND = "tissue_labels.json"
ORGAN_TISSUES = {
    "liver": ("liver",),
    "kidney": ("kidney",),
    "pancreas": ("pancreas",),
    "lung": ("lung",),
    "colon": ("colon wall",),
    "bone": ("bone marrow",),
    "brain": ("gray matter", "white matter"),
}


def labels_path(case: Case) -> Path | None:
    """The case's tissue label map, when its folder is a phantom set that has one."""
    image = case.image.path
    path = image.with_name(image.name.removesuffix(".nii.gz") + "_labels.nii.gz")
    return path if path.is_file() and (image.parent / TISSUE_LEGEND).is_file() else None


def organ_mask(case: Case, image: Volume) -> Volume | None:
    """The case's organ (uint8 0/1 on the image's grid): its own organ mask or tissue labels, else the organ prior
    of the organ its prompt names (every method then searches the same region); None when the prompt names no
    organ with a prior (the methods fall back to the body)."""
    if case.organ_mask is not None:
        return given_organ_mask(case, image)
    path = labels_path(case)
    if path is None or case.organ not in ORGAN_TISSUES:
        return prior_mask(case, image)
    legend = json.loads((path.parent / TISSUE_LEGEND).read_text(encoding="utf-8"))
    labels = read_volume(path)
    if not labels.grid.matches(image.grid, tolerance=1e-3):
        raise InputError(f"case {case.case_id}: the tissue label map is not on the image's grid", path=path,
                         hint="Regenerate the phantom set; its label maps are written on each image's grid.")
    return organ_from_labels(labels, case.organ, {int(value): name for value, name in legend.items()})


def given_organ_mask(case: Case, image: Volume) -> Volume:
    """The organ mask the case's manifest names, as uint8 0/1, checked to lie on the image's grid."""
    organ = read_volume(case.organ_mask)
    if not organ.grid.matches(image.grid, tolerance=1e-3):
        raise InputError(f"case {case.case_id}: the organ mask is not on the image's grid", path=case.organ_mask,
                         hint="Resample the organ mask onto the image (nearest neighbour) or fix its header.")
    return organ.like((organ.array > 0).astype(np.uint8), modality="mask")


def organ_from_labels(labels: Volume, organ: str, legend: dict[int, str]) -> Volume:
    """The organ's parenchyma plus every lesion compartment of a tissue label map, as uint8 0/1."""
    values = [value for value, name in legend.items() if name in ORGAN_TISSUES[organ]]
    inside = np.isin(labels.array, values) | (labels.array >= LESION_OFFSET)
    return labels.like(inside.astype(np.uint8), modality="mask")


def prior_mask(case: Case, image: Volume) -> Volume | None:
    """The organ prior's mask of the organ ``case.prompt`` names, or None when there is no prior (the body)."""
    from ..organs import organ_for, organ_prior
    from ..text import parse_prompt

    organ = parse_prompt(case.prompt, case.modality).organ_name
    if not organ:
        return None
    prior = organ_prior(image, organ_for(organ), modality=case.modality)
    return None if prior.method == "body" else prior.mask()
