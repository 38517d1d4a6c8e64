"""Scores in millimetres on anisotropic grids, empty-mask conventions, AUROC."""

from __future__ import annotations

import math

import numpy as np
import pytest

from diffugts.errors import DiffuGTSError
from diffugts.evaluation import auroc, segmentation_scores
from diffugts.io import Volume

SPACING = (1.0, 1.0, 3.0)  # i, j, k in mm


def cube(shift_ijk=(0, 0, 0)) -> Volume:
    array = np.zeros((20, 30, 30), np.uint8)  # [k, j, i]
    di, dj, dk = shift_ijk
    array[5 + dk:15 + dk, 10 + dj:20 + dj, 10 + di:20 + di] = 1
    return Volume(array, SPACING, (0.0, 0.0, 0.0), np.eye(3))


def test_identical_masks_are_perfect():
    scores = segmentation_scores(cube(), cube())
    assert (scores.dice, scores.nsd, scores.hd95_mm) == (1.0, 1.0, 0.0)
    assert scores.true_ml == pytest.approx(10 * 10 * 10 * 3 / 1000)


def test_shift_along_i_is_measured_in_i_spacing():
    scores = segmentation_scores(cube((1, 0, 0)), cube())
    assert scores.dice == pytest.approx(0.9)
    assert scores.hd95_mm == pytest.approx(1.0)
    assert scores.nsd == pytest.approx(1.0)  # 1 mm is within the 2 mm tolerance


def test_shift_along_k_is_measured_in_k_spacing():
    scores = segmentation_scores(cube((0, 0, 1)), cube())
    assert scores.dice == pytest.approx(0.9)
    assert scores.hd95_mm == pytest.approx(3.0)
    assert scores.nsd < 1.0  # 3 mm is beyond the 2 mm tolerance


def test_empty_mask_conventions():
    empty = cube().like(np.zeros((20, 30, 30), np.uint8))
    both = segmentation_scores(empty, empty)
    assert (both.dice, both.nsd, both.hd95_mm) == (1.0, 1.0, 0.0)
    missed = segmentation_scores(empty, cube())
    assert (missed.dice, missed.nsd) == (0.0, 0.0) and math.isnan(missed.hd95_mm)
    false_alarm = segmentation_scores(cube(), empty)
    assert false_alarm.dice == 0.0 and false_alarm.predicted_ml > 0 and false_alarm.true_ml == 0


def test_prediction_on_another_grid_is_refused():
    moved = cube()
    moved.origin = (0.5, 0.0, 0.0)
    with pytest.raises(DiffuGTSError, match="does not lie on the expert mask's grid"):
        segmentation_scores(moved, cube())


def test_auroc():
    assert auroc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == pytest.approx(0.75)
    assert auroc(np.linspace(0, 1, 100), np.arange(100) >= 50) == 1.0
    assert math.isnan(auroc([0.2, 0.9], [True, True]))
