"""The methods an evaluation compares, behind one small protocol: image, prompt, organ mask -> predictions.

- ``diffugts``: the full Segmenter (attention, inpainting, refinement, post-processing): finding.mask and
  finding.presence.
- ``attention-only``: the same Segmenter call's attention map alone, thresholded at the heads' threshold
  (inside the organ mask when one is given), with the full method's presence rule applied to the
  attention map (mean of the most likely ``presence_volume_mm3``), so only the map differs.
- ``intensity-outlier``: the robust-statistics baseline of :mod:`.baselines`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..backbone.intensity import modality_family
from ..io import Volume
from ..progress import ProgressCallback, silent
from .baselines import intensity_outliers

DIFFUGTS, ATTENTION_ONLY, INTENSITY_OUTLIER = "diffugts", "attention-only", "intensity-outlier"
METHODS = (DIFFUGTS, ATTENTION_ONLY, INTENSITY_OUTLIER)
SEGMENTER_METHODS = (DIFFUGTS, ATTENTION_ONLY)


@dataclass(frozen=True)
class Prediction:
    """One method's answer for one case: a uint8 0/1 mask on the image grid and a presence score."""

    mask: Volume
    presence: float
    seconds: float
    region: str  # where the method looked: "organ", "body" or "image"


class Predictor(Protocol):
    methods: tuple[str, ...]

    def supports(self, modality: str) -> bool:
        """Whether this predictor's models can read images of ``modality``."""

    def predict(self, image: Volume, prompt: str, organ_mask: Volume | None,
                progress: ProgressCallback = silent) -> dict[str, Prediction]:
        """One prediction per method in ``methods``."""


class OutlierPredictor:
    """The intensity-outlier baseline inside the organ (or the body when there is no organ mask)."""

    methods = (INTENSITY_OUTLIER,)

    def supports(self, modality: str) -> bool:
        return True

    def predict(self, image: Volume, prompt: str, organ_mask: Volume | None,
                progress: ProgressCallback = silent) -> dict[str, Prediction]:
        start = time.perf_counter()
        result = intensity_outliers(image, organ_mask)
        return {INTENSITY_OUTLIER: Prediction(result.mask, result.presence, time.perf_counter() - start,
                                              result.region)}


class SegmenterPredictor:
    """Both Segmenter methods from one Segmenter call: the full method and its attention map alone."""

    def __init__(self, segmenter, settings, methods: tuple[str, ...] = SEGMENTER_METHODS) -> None:
        self.segmenter = segmenter
        self.settings = settings
        self.methods = tuple(m for m in SEGMENTER_METHODS if m in methods)

    def supports(self, modality: str) -> bool:
        return modality_family(modality) in self.segmenter.backbone.config.intensity

    def predict(self, image: Volume, prompt: str, organ_mask: Volume | None,
                progress: ProgressCallback = silent) -> dict[str, Prediction]:
        from ..segment.postprocess import presence_score

        result = self.segmenter(image, [prompt], settings=self.settings, organ_mask=organ_mask, progress=progress)
        finding = result.findings[0]
        organ = organ_mask.array > 0 if organ_mask is not None and self.settings.restrict_to_organ else None
        region = "organ" if organ is not None else "image"
        attention = finding.attention.array > finding.attention_threshold
        if organ is not None:
            attention &= organ
        # the attention map alone costs the encoding and the heads, not inpainting and refinement
        attention_seconds = result.timings.get("encode", 0.0) + result.timings.get("attention", 0.0)
        predictions = {
            DIFFUGTS: Prediction(finding.mask, float(finding.presence), result.timings["total"], region),
            ATTENTION_ONLY: Prediction(
                finding.attention.like(attention.astype(np.uint8), modality="mask"),
                presence_score(finding.attention, self.settings.presence_volume_mm3, organ),
                attention_seconds, region),
        }
        return {method: predictions[method] for method in self.methods}
