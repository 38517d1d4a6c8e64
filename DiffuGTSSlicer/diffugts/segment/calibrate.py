"""Presence calibration: the threshold below which a finding is reported "not found", chosen on validation scans.

Positives: tumors of seen categories asked for by their own prompt. Negatives: tumor-free scans asked for a seen
category, tumors asked for a seen category of another organ (a wrong-organ prompt), and pure noise. Each runs
through the Segmenter as a user's request would: the case's own prompt with the case's organ mask when the dataset
has one (as ``diffugts evaluate`` runs it), other prompts with the organ prior their words name. The threshold is
the one with the best balanced accuracy (Youden's J; ties: the higher threshold, fewer false reports).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..data.categories import CATEGORIES
from ..io import Volume, read_volume
from ..progress import ProgressCallback, silent
from .settings import SegmentSettings

NOISE_HU = (0.0, 300.0)  # mean and SD of the pure-noise negative
NOISE_SIZE = (64, 64, 64)


@dataclass(frozen=True)
class Trial:
    """One calibration request and its presence score."""

    case: str
    prompt: str
    kind: str  # "tumor", "tumor-free", "wrong organ" or "noise"
    presence: float

    @property
    def positive(self) -> bool:
        return self.kind == "tumor"


def noise_volume(spacing_mm: float = 2.0, seed: int = 0) -> Volume:
    """A CT-like volume of pure Gaussian noise: nothing in it is a tumor of any organ."""
    rng = np.random.default_rng(seed)
    array = rng.normal(*NOISE_HU, NOISE_SIZE[::-1]).round().astype(np.int16)
    return Volume(array, (spacing_mm,) * 3, (0.0, 0.0, 0.0), np.eye(3), modality="CT")


def trials(segmenter, cases: list, categories: list[str], settings: SegmentSettings, modality: str,
           progress: ProgressCallback = silent) -> list[Trial]:
    """Every case with its own prompt (positive when it has a tumor) and, for tumors, a seen category of another
    organ; then pure noise with each seen category."""
    out: list[Trial] = []
    for n, case in enumerate(cases):
        images, mask = case.load()
        image = next(iter(images.values()))
        tumor = mask is not None and bool(mask.array.any())
        category = case.category if case.category in categories else categories[n % len(categories)]
        asked = [(category, "tumor" if tumor else "tumor-free")]
        others = [c for c in categories if CATEGORIES[c].organ != CATEGORIES[category].organ]
        if tumor and others:
            asked.append((others[n % len(others)], "wrong organ"))
        organ = read_volume(case.organ_mask) if case.organ_mask is not None else None
        for (text, kind), given in zip(asked, (organ, None)):  # the case's organ mask serves its own prompt only
            finding = segmenter(image, [text], settings=settings, modality=case.modality,
                                organ_mask=given).findings[0]
            out.append(Trial(case.case_id, text, kind, float(finding.presence)))
        progress("calibrate presence", (n + 1) / (len(cases) + 1))
    result = segmenter(noise_volume(), categories, settings=settings, modality=modality)
    out += [Trial("noise", text, "noise", float(f.presence)) for text, f in zip(categories, result.findings)]
    progress("calibrate presence", 1.0)
    return out


def choose_threshold(scores: list[float], positive: list[bool]) -> tuple[float, float, float]:
    """(threshold, true-positive rate, false-positive rate) with the best Youden's J; a score at or above the
    threshold is reported found. Candidates lie midway between consecutive distinct scores."""
    values = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(positive, dtype=bool)
    if labels.all() or not labels.any():
        raise ValueError("calibration needs both positive and negative trials")
    distinct = np.unique(values)
    candidates = np.concatenate([[distinct[0] - 1e-6], (distinct[:-1] + distinct[1:]) / 2, [distinct[-1] + 1e-6]])
    best = (-2.0, 0.0, 0.0, 0.0)
    for t in candidates:
        found = values >= t
        tpr, fpr = float(found[labels].mean()), float(found[~labels].mean())
        if tpr - fpr >= best[0]:  # >=: among ties the higher threshold
            best = (tpr - fpr, float(t), tpr, fpr)
    return best[1], best[2], best[3]


def calibrate(segmenter, cases: list, categories: list[str], settings: SegmentSettings, modality: str,
              progress: ProgressCallback = silent) -> tuple[float, dict]:
    """The presence threshold for ``segmenter``'s refinement head, and a report of how it was chosen."""
    made = trials(segmenter, cases, categories, settings, modality, progress)
    threshold, tpr, fpr = choose_threshold([t.presence for t in made], [t.positive for t in made])
    by_kind = {kind: [t.presence for t in made if t.kind == kind] for kind in dict.fromkeys(t.kind for t in made)}
    report = {"presence_threshold": threshold, "true_positive_rate": tpr, "false_positive_rate": fpr,
              "trials": len(made),
              "presence_by_kind": {k: {"n": len(v), "mean": float(np.mean(v)), "max": float(np.max(v)),
                                       "min": float(np.min(v))} for k, v in by_kind.items()},
              "rows": [t.__dict__ for t in made]}
    segmenter.refine.config = replace(segmenter.refine.config, presence_threshold=threshold)
    return threshold, report
