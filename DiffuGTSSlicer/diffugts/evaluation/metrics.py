"""Segmentation and detection scores in physical units: Dice, NSD and HD95 through MONAI, AUROC.

Conventions for empty masks (MONAI leaves them undefined): both empty is a perfect result (Dice 1,
NSD 1, HD95 0 mm); exactly one empty gives Dice 0, NSD 0 and HD95 NaN (no surface to measure), which
aggregations count separately instead of averaging.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from monai.metrics import compute_dice, compute_hausdorff_distance, compute_surface_dice
from sklearn.metrics import roc_auc_score

from ..errors import DiffuGTSError
from ..io import Volume

NSD_TOLERANCE_MM = 2.0


@dataclass(frozen=True)
class SegmentationScores:
    dice: float
    nsd: float
    hd95_mm: float
    predicted_ml: float
    true_ml: float


def segmentation_scores(prediction: Volume, truth: Volume, tolerance_mm: float = NSD_TOLERANCE_MM) -> SegmentationScores:
    """Scores of a binary prediction against the expert mask; both must lie on the same grid."""
    if not prediction.grid.matches(truth.grid, tolerance=1e-4):
        raise DiffuGTSError(
            "the prediction does not lie on the expert mask's grid",
            path=prediction.source,
            hint=f"Resample it onto {truth.source or 'the mask'}'s grid (size, spacing, origin, direction) first.",
        )
    predicted, true = prediction.array > 0, truth.array > 0
    voxel_ml = truth.voxel_volume_ml
    volumes = dict(predicted_ml=float(predicted.sum()) * voxel_ml, true_ml=float(true.sum()) * voxel_ml)
    if not predicted.any() and not true.any():
        return SegmentationScores(1.0, 1.0, 0.0, **volumes)
    if not predicted.any() or not true.any():
        return SegmentationScores(0.0, 0.0, math.nan, **volumes)
    y_pred = torch.from_numpy(predicted)[None, None].float()
    y = torch.from_numpy(true)[None, None].float()
    spacing = tuple(reversed(truth.spacing))  # arrays are [k, j, i]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        dice = compute_dice(y_pred, y, include_background=True)
        nsd = compute_surface_dice(y_pred, y, [tolerance_mm], include_background=True, spacing=spacing)
        hd95 = compute_hausdorff_distance(y_pred, y, include_background=True, percentile=95, spacing=spacing)
    return SegmentationScores(float(dice), float(nsd), float(hd95), **volumes)


def auroc(scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray) -> float:
    """Area under the ROC curve; NaN when only one class is present (nothing to rank)."""
    labels = np.asarray(labels, dtype=bool).ravel()
    if labels.all() or not labels.any():
        return math.nan
    return float(roc_auc_score(labels, np.asarray(scores, dtype=np.float64).ravel()))
