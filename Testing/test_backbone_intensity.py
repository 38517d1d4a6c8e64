"""MR intensity handling: robust percentile scaling inside the body or brain, bias-field tolerant, per sequence."""

from __future__ import annotations

import numpy as np

from diffugts.backbone import get_config
from diffugts.backbone.intensity import convention_for, intensity_map

ROBUST = {"kind": "robust", "percentiles": [0.1, 99.5], "headroom": 0.25}


def _head(rng, background: int = 8, scale: float = 1.0) -> np.ndarray:
    """A head-like MR: air around a 'brain' of two tissues (300 and 450) and a bright lesion (900)."""
    size = 32 + 2 * background
    array = np.zeros((size, size, size))
    inner = slice(background, background + 32)
    array[inner, inner, inner] = 300.0
    array[background:background + 16, inner, inner] = 450.0
    array[background + 12:background + 16, background + 12:background + 16, background + 12:background + 16] = 900.0
    return np.abs(array + rng.normal(0, 10, array.shape)) * scale


def test_scaling_follows_the_tissue_not_the_background_or_the_scanner_scale():
    rng = np.random.default_rng(0)
    tight, wide = intensity_map(ROBUST, _head(rng, 2)), intensity_map(ROBUST, _head(rng, 30))
    assert abs(tight.high - wide.high) / tight.high < 0.05  # 20% or 90% air: the same map
    assert tight.low < 40 and wide.low < 40  # air maps to 0
    scaled = intensity_map(ROBUST, _head(rng, 8, 7.0))
    assert abs(scaled.high / 7.0 - tight.high) / tight.high < 0.05
    tissue = intensity_map(ROBUST, _head(rng)).forward(np.array([300.0, 450.0]))
    assert 0.25 < tissue[0] < tissue[1] < 0.8  # tissue below 1/(1+headroom): the lesion keeps room


def test_a_smooth_bias_field_moves_the_map_little():
    rng = np.random.default_rng(1)
    head = _head(rng)
    field = np.linspace(0.8, 1.2, head.shape[0])[:, None, None]  # +-20% across the head
    plain, biased = intensity_map(ROBUST, head), intensity_map(ROBUST, head * field)
    assert abs(biased.high - plain.high) / plain.high < 0.1
    body = head > 150
    clipped = float(np.mean(biased.forward(head * field)[body] >= 1.0))
    assert clipped < 0.01  # tissue brightened by the field is not clipped


def test_masked_scans_and_sequences_get_their_own_convention():
    rng = np.random.default_rng(2)
    brain = np.where(_head(rng) > 150, _head(rng), -3.5)  # skull-stripped and z-scored, BraTS style
    imap = intensity_map(ROBUST, brain)
    assert imap.low == -3.5 or abs(imap.low + 3.5) < 1e-6
    config = get_config("demo-mr")
    assert convention_for(config.intensity, "MR-FLAIR")["headroom"] == 0.5
    assert convention_for(config.intensity, "MR-T2") == config.intensity["mr"]
    assert convention_for(config.intensity, "CT") is None
    assert convention_for(get_config("demo-ct").intensity, "CT")["kind"] == "clip"
