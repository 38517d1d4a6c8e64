"""The prompt's organ in the pipeline: organ context on the model grid, gating, "not found", calibration, demo score."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from diffugts.backbone import build_backbone
from diffugts.backbone.grid import from_model_grid, map_to_model_grid, to_model_grid
from diffugts.data.phantom import make_phantom
from diffugts.demo import DEMO_MASK
from diffugts.demo.score import demo_dice
from diffugts.errors import InputError
from diffugts.io import write_volume
from diffugts.organs.prior import user_prior
from diffugts.segment import PRESETS
from diffugts.segment.calibrate import choose_threshold, noise_volume
from diffugts.segment.organ_context import context_of, robust_zscore
from geometry_cases import make_volume

FAST = PRESETS["fast"]


@pytest.fixture(scope="module")
def kidney_phantom():
    return make_phantom("kidney tumor", "CT", (40, 36, 28), seed=3)


def test_a_map_carried_to_the_model_grid_comes_back_in_place_on_an_oblique_grid():
    volume = make_volume("oblique", "float32", (18, 22, 26))
    config = build_backbone("demo-ct").config
    _, _, grid = to_model_grid(volume.like(volume.array * 0 + 40.0, modality="CT"), config, modality="CT")
    block = np.zeros(volume.array.shape, np.float32)
    block[4:14, 6:16, 8:20] = 1.0
    there = map_to_model_grid(volume.like(block), grid)
    assert there.shape[2:] == torch.Size(grid.padded)
    assert float(there[..., grid.resized[0]:, :, :].abs().sum()) == 0.0  # nothing in the padding
    back = from_model_grid(there, grid, intensities=False)
    assert back.grid == volume.grid
    dice = 2 * ((back.array >= 0.5) & (block > 0)).sum() / ((back.array >= 0.5).sum() + block.sum())
    assert dice > 0.85


def test_organ_context_of_a_user_mask_is_that_mask_and_its_zscore_lights_an_outlier(kidney_phantom):
    image = kidney_phantom.image
    config = build_backbone("demo-ct").config
    tensor, tumor, grid = to_model_grid(image, config, modality="CT", mask=kidney_phantom.mask)
    organ = image.like((kidney_phantom.organs.array > 0).astype(np.uint8), modality="mask")
    context = context_of(user_prior(image, "kidney", organ), tensor, grid)
    assert context.method == "user"
    assert set(torch.unique(context.region).tolist()) <= {0.0, 1.0}
    inside = map_to_model_grid(organ, grid) >= 0.5
    assert torch.equal(context.region > 0, inside)  # a user's mask is taken as it is, no margin
    assert -1.0 <= float(context.zscore.min()) and float(context.zscore.max()) <= 1.0
    # the z-score is measured against the organ's own values: its median voxel scores about 0
    assert abs(float(context.zscore[inside].median())) < 0.05


def test_robust_zscore_is_centred_on_the_organ_and_clipped():
    volume = make_volume("LPS", "float32", (16, 16, 16))
    config = build_backbone("demo-ct").config
    _, _, grid = to_model_grid(volume.like(volume.array * 0 + 40.0, modality="CT"), config, modality="CT")
    rng = np.random.default_rng(0)
    image = torch.from_numpy(rng.normal(0.5, 0.01, (1, 1, *grid.padded)).astype(np.float32))
    image[0, 0, 2, 2, 2] = 0.9  # 40 SD above the organ
    where = torch.ones_like(image, dtype=torch.bool)
    z = robust_zscore(image, where, grid)
    assert float(z[0, 0, 2, 2, 2]) == 1.0
    assert abs(float(z.median())) < 0.02


def test_presence_threshold_has_the_best_balanced_accuracy_and_needs_both_kinds():
    scores = [0.9, 0.8, 0.7, 0.4, 0.3, 0.6, 0.2]
    positive = [True, True, True, True, False, False, False]
    threshold, tpr, fpr = choose_threshold(scores, positive)
    assert 0.6 < threshold <= 0.7 and tpr == 0.75 and fpr == 0.0
    with pytest.raises(ValueError):
        choose_threshold([0.1, 0.2], [True, True])


def test_the_noise_negative_is_noise_on_a_regular_grid():
    noise = noise_volume(seed=1)
    assert noise.modality == "CT" and noise.array.shape == (64, 64, 64)
    assert abs(float(noise.array.mean())) < 5 and 280 < float(noise.array.std()) < 320


def test_demo_score_is_the_dice_of_label_one_against_the_bundled_mask(tmp_path):
    from diffugts.io import read_volume

    truth = read_volume(DEMO_MASK)
    with pytest.raises(InputError, match="report.json"):
        demo_dice(tmp_path)
    half = truth.array.copy()
    half[: half.shape[0] // 2] = 0  # about half the lesion
    write_volume(truth.like(half.astype(np.uint8), modality="labels"), tmp_path / "labels.nii.gz")
    prompt = {"prompt": "lung tumor", "volume_ml": 1.0, "found": True}
    (tmp_path / "report.json").write_text(json.dumps({"outputs": {"labels": "labels.nii.gz"}, "prompts": [prompt]}))
    dice, entry = demo_dice(tmp_path)
    kept = int((half > 0).sum())
    assert dice == pytest.approx(2 * kept / (kept + int((truth.array > 0).sum())))
    assert entry["prompt"] == "lung tumor"


def test_a_second_organ_on_a_cached_scan_registers_no_atlas_again(segmenter, monkeypatch):
    """The atlas-to-scan transforms do not depend on the organ: a scan's atlases are registered once, by its first
    prompt that needs them, and a second prompt naming another atlas organ reuses them (it registered them all
    again before, 4-5 s of a new prompt's 6.5 s 'organ' stage on the 256x256x128 benchmark CT)."""
    from diffugts.organs import atlas

    calls = []
    register = atlas.register
    monkeypatch.setattr(atlas, "register", lambda *args, **kwargs: calls.append(1) or register(*args, **kwargs))
    image = make_phantom("kidney tumor", "CT", (40, 36, 28), seed=11).image  # a scan no other test segments
    kidney = segmenter(image, "kidney tumor", settings=FAST).findings[0]
    liver = segmenter(image, "liver tumor", settings=FAST).findings[0]
    assert (kidney.organ.name, liver.organ.name) == ("kidney", "liver")
    assert kidney.organ.method == liver.organ.method == "atlas"
    assert len(calls) == len(atlas.atlases("CT")) > 0  # once per atlas for the scan, not per organ
