"""Host scans for synthesized tumors: the corpus's tumor-free cases, and the region each category grows in.

The region is the host's own organ map when it has the organ; else the organ prior of diffugts.organs
(skipped when it only has the body to offer, or, on CT, when the region's median HU is not the organ's); the
body regions without an organ label are derived here: "fat" (CT -190..-30 HU, MR the bright quarter of the
body) and "breast" (the front of the chest, within BREAST_DEPTH_MM of the skin).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from ...errors import DiffuGTSError
from ...evaluation.baselines import body_mask
from ...io import Volume
from ...organs.labels import LABEL_OF
from ..categories import CATEGORIES
from ..corpus import CorpusCase, read_corpus
from .recipes import RECIPES

MIN_ORGAN_ML = 2.0  # an organ map with less than this of the organ does not hold it
BREAST_DEPTH_MM = 45.0
FAT_HU = (-190.0, -30.0)
MR_FAT_QUANTILE = 0.75
ANTERIOR_FRACTION = 0.35  # the breast region is the front this fraction of the body's depth
SKIN_IN_VIEW = 0.05  # the scan's front tenth must be at least this much air (else it is a crop inside the body)
NEAR_MM = 25.0
# CT: the median HU an organ prior's region must have to be believed (a prior registered onto a scan that does
# not show the organ lands on whatever is there)
CT_ORGAN_HU = {"liver": (0, 250), "kidney": (0, 300), "pancreas": (-20, 250), "spleen": (0, 250),
               "muscle": (-20, 150), "lung": (-1000, -500), "bone": (100, 1500), "brain": (0, 90),
               "colon": (-1000, 200)}
# the body regions (words of the corpus's body_region) where each host organ can be: only these are asked
# for an organ prior, since a registration of a liver atlas onto a brain answers nothing useful
REGION_WORDS = {
    "brain": ("brain", "head"), "lung": ("chest", "thorax", "lung"), "breast": ("chest", "thorax", "breast"),
    "liver": ("abdomen",), "kidney": ("abdomen",), "pancreas": ("abdomen",), "colon": ("abdomen", "pelvis"),
    "bone": ("abdomen", "pelvis", "chest", "thorax", "spine"), "muscle": ("abdomen", "pelvis", "limb", "thigh"),
    "fat": ("abdomen", "pelvis", "chest", "thorax"),
}


@dataclass
class Host:
    """A tumor-free corpus case, loaded: its image, organ map (or None) and the regions found so far."""

    case: CorpusCase
    image: Volume
    organs: Volume | None
    regions: dict[str, tuple[np.ndarray, str] | None]  # host organ -> (bool mask [k, j, i], how it was found)

    def region(self, organ: str) -> tuple[np.ndarray, str] | None:
        """Where ``organ`` is in this host and how that was found, or None when the host does not show it."""
        if organ not in self.regions:
            self.regions[organ] = _find_region(self, organ)
        return self.regions[organ]


def tumor_free_cases(corpus: str | Path, split: str) -> list[CorpusCase]:
    """The corpus's tumor-free cases of ``split``, in case_id order."""
    cases = [case for case in read_corpus(corpus) if case.tumor == "no" and case.split == split]
    if not cases:
        raise DiffuGTSError(f"the corpus has no tumor-free case in its {split} split", path=corpus,
                            hint="Build the corpus from scans with tumor 'no' (see corpus.csv), or use the other "
                                 "--split.")
    return sorted(cases, key=lambda case: case.case_id)


def fits(case: CorpusCase, category: str) -> bool:
    """Whether ``case`` may host ``category``: its modality shows it, and its region may hold the organ
    (an organ map that holds the organ always counts)."""
    info = CATEGORIES[category]
    modality_ok = case.modality in info.modalities or (case.modality == "MR" and
                                                        any(m.startswith("MR-") for m in info.modalities))
    if not modality_ok:
        return False
    organ = RECIPES[category].host
    region = case.body_region.lower()
    return case.organs is not None and organ in LABEL_OF or any(w in region for w in REGION_WORDS.get(organ, ()))


def load_host(case: CorpusCase) -> Host:
    return Host(case, case.load_image(), case.load_organs(), {})


def _find_region(host: Host, organ: str) -> tuple[np.ndarray, str] | None:
    if organ in ("fat", "breast"):
        mask = _fat(host) if organ == "fat" else _breast(host)
        enough = mask.sum() * host.image.voxel_volume_ml >= MIN_ORGAN_ML
        return (mask, "fat of the body" if organ == "fat" else "front of the chest") if enough else None
    label = LABEL_OF.get(organ)
    if host.organs is not None and label is not None:
        mask = host.organs.array == label
        if mask.sum() * host.image.voxel_volume_ml >= MIN_ORGAN_ML:
            return mask, "organ map"
    if not any(w in host.case.body_region.lower() for w in REGION_WORDS.get(organ, ())):
        return None
    from ...organs import organ_prior

    prior = organ_prior(host.image, organ, modality=host.case.modality)
    if prior.method == "body":
        return None
    mask = prior.mask().array > 0
    if mask.sum() * host.image.voxel_volume_ml < MIN_ORGAN_ML:
        return None
    if host.case.modality == "CT" and organ in CT_ORGAN_HU:
        low, high = CT_ORGAN_HU[organ]
        if not low <= float(np.median(host.image.array[mask])) <= high:
            return None
    return mask, f"organ prior ({prior.method})"


def near(host: Host, organ: str, mask: np.ndarray) -> np.ndarray:
    """``mask`` restricted to within NEAR_MM of ``organ`` when the host's organ map has it (else ``mask``)."""
    label = LABEL_OF.get(organ)
    if host.organs is None or label is None:
        return mask
    target = host.organs.array == label
    if organ == "vessel":
        target |= host.organs.array == LABEL_OF["aorta"]
    if not target.any():
        return mask
    distance = ndimage.distance_transform_edt(~target, sampling=host.image.spacing[::-1])
    close = mask & (distance <= NEAR_MM)
    return close if close.any() else mask


def _body(host: Host) -> np.ndarray:
    if "body" not in host.regions:
        host.regions["body"] = (body_mask(host.image), "body")
    return host.regions["body"][0]


def _fat(host: Host) -> np.ndarray:
    """Fat inside the body, away from the skin (the visceral fat where lymph nodes lie)."""
    body = _body(host)
    values = host.image.array
    if host.case.modality == "CT":
        fat = body & (values >= FAT_HU[0]) & (values <= FAT_HU[1])
    else:
        fat = body & (values >= np.quantile(values[body], MR_FAT_QUANTILE))
    depth = ndimage.distance_transform_edt(body, sampling=host.image.spacing[::-1])
    organs = host.organs.array > 0 if host.organs is not None else np.zeros_like(body)
    return ndimage.binary_opening(fat & (depth > 20.0) & ~organs)


def _breast(host: Host) -> np.ndarray:
    """The body's front (anterior in world coordinates), within BREAST_DEPTH_MM of the skin, bone and air left out."""
    body = _body(host)
    posterior = _world_posterior(host.image)  # LPS y: posterior is +y, so the front has the smallest values
    inside = posterior[body]
    front = posterior <= inside.min() + ANTERIOR_FRACTION * (inside.max() - inside.min())
    skin_in_view = (~body & (posterior <= posterior.min() + 0.1 * np.ptp(posterior))).mean() >= SKIN_IN_VIEW
    if not skin_in_view:  # a crop inside the body: its front is the mediastinum, not the breast
        return np.zeros_like(body)
    depth = ndimage.distance_transform_edt(body, sampling=host.image.spacing[::-1])
    region = body & front & (depth <= BREAST_DEPTH_MM)
    if host.case.modality == "CT":
        region &= (host.image.array > -300) & (host.image.array < 200)
    return region


def _world_posterior(image: Volume) -> np.ndarray:
    """The LPS y (posterior) coordinate of every voxel, shaped like the array."""
    affine = image.grid.ijk_to_lps
    k, j, i = (np.arange(n, dtype=np.float32) for n in image.array.shape)
    return (affine[1, 0] * i[None, None, :] + affine[1, 1] * j[None, :, None] + affine[1, 2] * k[:, None, None]
            + affine[1, 3]).astype(np.float32)


def host_candidates(cases: Sequence[CorpusCase], category: str) -> list[CorpusCase]:
    return [case for case in cases if fits(case, category)]
