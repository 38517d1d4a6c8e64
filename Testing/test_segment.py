"""The end-to-end Segmenter and `diffugts segment`: outputs on the input's exact grid, report, cache, errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from diffugts.data.phantom import make_phantom
from diffugts.errors import DiffuGTSError, InputError
from diffugts.io import Volume, read_grid, read_volume
from diffugts.io.crop import Box, crop, uncrop
from diffugts.segment import PRESETS, Segmenter
from diffugts.segment.postprocess import binary_mask, presence_score
from diffugts.segment.write import REPORT_SCHEMA, output_names, write_result
from geometry_cases import make_volume

FAST = PRESETS["fast"]


@pytest.fixture(scope="module")
def oblique_phantom():
    """A kidney-tumor phantom on an oblique, anisotropic grid (the generator draws random orientations)."""
    for seed in range(50):
        phantom = make_phantom("kidney tumor", "CT", (40, 36, 28), seed=seed)
        direction = np.abs(phantom.image.direction)
        if not np.allclose(direction, np.round(direction)):
            return phantom
    raise AssertionError("no oblique phantom in 50 seeds")


@pytest.fixture(scope="module")
def phantom_result(segmenter, oblique_phantom):
    return segmenter(oblique_phantom.image, ["kidney tumor", "liver tumor"], settings=replace(FAST, seeds=(0, 1)))


def test_every_output_lies_on_the_oblique_input_grid(phantom_result, oblique_phantom, tmp_path):
    grid = oblique_phantom.image.grid
    outputs = [phantom_result.pseudo_healthy, phantom_result.uncertainty]
    for finding in phantom_result.findings:
        outputs += [finding.probability, finding.mask, finding.attention]
    for volume in outputs:
        assert volume.grid == grid
    written = write_result(phantom_result, oblique_phantom.image, tmp_path)
    for name, path in written.items():
        if path.name.endswith((".nii.gz", ".seg.nrrd")):
            assert read_grid(path).matches(grid, tolerance=1e-4), name


def test_result_values_are_in_range(phantom_result):
    for finding in phantom_result.findings:
        assert 0.0 <= finding.probability.array.min() and finding.probability.array.max() <= 1.0
        assert set(np.unique(finding.mask.array)) <= {0, 1}
        assert 0.0 <= finding.presence <= 1.0
        assert finding.volume_ml == pytest.approx(finding.mask.array.sum() * finding.mask.voxel_volume_ml)
    assert 0.0 <= phantom_result.uncertainty.array.min() and phantom_result.uncertainty.array.max() <= 1.0
    assert phantom_result.pseudo_healthy.array.dtype == np.float32
    assert {"encode", "attention", "inpaint", "decode", "refine", "postprocess", "total"} <= set(phantom_result.timings)


def test_the_full_method_finds_the_phantoms_tumor_where_it_is(segmenter, phantom_result, oblique_phantom):
    """Not only values in range. With the phantom's kidney as the organ mask (the shipped atlases are real anatomy,
    which a phantom is not): the kidney-tumor prompt's probability is high in the tumor and low elsewhere, and its
    mask covers much of the tumor (measured 0.48 with the bundled heads). Without a mask, the liver prompt is
    searched in the liver prior only: nothing of the kidney tumor lights up for it."""
    tumor = oblique_phantom.mask.array > 0
    values, counts = np.unique(oblique_phantom.organs.array[tumor], return_counts=True)
    kidney = (oblique_phantom.organs.array == values[np.argmax(counts)]) | tumor
    organ = oblique_phantom.image.like(kidney.astype(np.uint8), modality="mask")
    found = segmenter(oblique_phantom.image, ["kidney tumor"], settings=replace(FAST, seeds=(0, 1)),
                      organ_mask=organ).findings[0]
    probability = found.probability.array
    assert probability[tumor].mean() > 2.5 * probability[~tumor].mean()
    assert (found.mask.array[tumor] > 0).mean() > 0.4
    liver = phantom_result.findings[1]
    assert liver.organ.name == "liver" and liver.mask.array[tumor].sum() == 0


def test_report_follows_its_schema(phantom_result, oblique_phantom, tmp_path):
    write_result(phantom_result, oblique_phantom.image, tmp_path, image_path="phantom.nii.gz")
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["schema"] == REPORT_SCHEMA
    assert [p["prompt"] for p in report["prompts"]] == ["kidney tumor", "liver tumor"]
    for number, entry in enumerate(report["prompts"], start=1):
        assert entry["label"] == number
        assert {"presence", "volume_ml", "components", "organ", "relevance", "seed_spread", "files"} <= set(entry)
        assert (tmp_path / entry["files"]["probability"]).is_file()
    assert report["prompts"][0]["organ"] == "kidney"
    assert report["models"]["backbone"] == "demo-ct" and report["settings"]["seeds"] == [0, 1]
    assert report["grid"]["size"] == list(oblique_phantom.image.size)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(output_names(2))
    labels = read_volume(tmp_path / "labels.nii.gz").array
    assert set(np.unique(labels)) <= {0, 1, 2}


def test_a_second_prompt_reuses_the_volume_and_a_repeat_reuses_the_samples(segmenter, oblique_phantom):
    volume = oblique_phantom.image.like(oblique_phantom.image.array.copy())
    first = segmenter(volume, "kidney tumor", settings=FAST)
    second = segmenter(volume, "kidney cyst", settings=FAST)
    assert second.cache["volume_misses"] == first.cache["volume_misses"]
    assert second.cache["volume_hits"] == first.cache["volume_hits"] + 1
    again = segmenter(volume, "kidney tumor", settings=FAST)
    assert again.cache["sample_hits"] > second.cache["sample_hits"]
    assert np.array_equal(again.findings[0].probability.array, first.findings[0].probability.array)
    changed = volume.like(volume.array + 1)
    segmenter(changed, "kidney tumor", settings=FAST)
    assert segmenter.cache_counters["volume_misses"] == second.cache["volume_misses"] + 1


def test_roi_results_are_placed_back_on_the_whole_grid(segmenter, oblique_phantom):
    image = oblique_phantom.image
    box = Box((4, 2, 3), (36, 30, 24))
    result = segmenter(image, "kidney tumor", settings=FAST, roi=box)
    finding = result.findings[0]
    assert finding.probability.grid == image.grid
    outside = np.ones(image.array.shape, bool)
    outside[box.slices] = False
    assert not finding.probability.array[outside].any() and not finding.mask.array[outside].any()
    assert np.array_equal(result.pseudo_healthy.array[outside], image.array[outside].astype(np.float32))


def test_crop_keeps_voxels_in_place_on_an_oblique_grid():
    volume = make_volume("oblique", shape_kji=(9, 11, 13))
    box = Box((2, 3, 4), (10, 9, 8))
    part = crop(volume, box)
    assert part.array.shape == (4, 6, 8)
    # voxel (0, 0, 0) of the part is voxel (2, 3, 4) of the whole, in space
    whole_point = volume.grid.ijk_to_lps @ np.array([2, 3, 4, 1.0])
    assert np.allclose(part.grid.ijk_to_lps @ np.array([0, 0, 0, 1.0]), whole_point)
    assert np.array_equal(part.array, volume.array[4:8, 3:9, 2:10])
    back = uncrop(part, volume, box)
    assert back.grid == volume.grid and np.array_equal(back.array[box.slices], part.array)
    assert Box.parse("2:10, 3:9 ,:").fit(volume.size) == Box((2, 3, 0), (10, 9, 9))
    for bad in ("1:2,3:4", "5:2,:,:", "0:99,:,:"):
        with pytest.raises(DiffuGTSError, match="ROI|roi"):
            Box.parse(bad).fit(volume.size)


def test_organ_mask_keeps_findings_inside_the_organ(segmenter, oblique_phantom):
    image = oblique_phantom.image
    nowhere = image.like(np.zeros(image.array.shape, np.uint8))
    result = segmenter(image, "kidney tumor", settings=FAST, organ_mask=nowhere)
    assert result.findings[0].mask.array.sum() == 0 and result.findings[0].presence == 0.0
    shifted = Volume(nowhere.array, image.spacing, tuple(o + 5 for o in image.origin), image.direction)
    with pytest.raises(DiffuGTSError, match="organ mask is not on the image's grid"):
        segmenter(image, "kidney tumor", settings=FAST, organ_mask=shifted)


def test_postprocessing_fills_holes_and_drops_small_components():
    probability = np.zeros((12, 12, 12), np.float32)
    probability[2:9, 2:9, 2:9] = 0.9
    probability[5, 5, 5] = 0.1  # a hole
    probability[11, 11, 11] = 0.9  # a one-voxel speck: 8 mm3 at 2 mm spacing
    volume = Volume(probability, (2.0, 2.0, 2.0), (0.0, 0.0, 0.0), np.eye(3))
    mask, components = binary_mask(volume, 0.5, fill_holes=True, min_component_mm3=50)
    assert components == 1 and mask.array[5, 5, 5] == 1 and mask.array[11, 11, 11] == 0
    kept, count = binary_mask(volume, 0.5, fill_holes=False, min_component_mm3=0)
    assert count == 2 and kept.array[5, 5, 5] == 0
    # presence: the mean of the most probable 500 mm3 (62 voxels of 8 mm3)
    assert presence_score(volume, 500) == pytest.approx(0.9)
    assert presence_score(volume.like(np.zeros_like(probability)), 500) == 0.0


def test_postprocessing_in_the_masks_box_equals_scipy_on_the_whole_volume():
    from scipy import ndimage

    from diffugts.segment.postprocess import filled

    rng = np.random.default_rng(0)
    for _ in range(100):
        mask = rng.random(tuple(rng.integers(1, 12, 3))) < rng.uniform(0.2, 0.8)
        assert np.array_equal(filled(mask), ndimage.binary_fill_holes(mask))
    for trial in range(20):  # blobs with holes, some touching the border, some cut by an organ
        probability = ndimage.gaussian_filter(rng.random((30, 26, 22)), 1.5).astype(np.float32)
        threshold = float(np.quantile(probability, 0.9 if trial % 2 else 0.6))
        organ = rng.random(probability.shape) < 0.95 if trial % 3 == 0 else None
        volume = Volume(probability, (1.0, 1.5, 2.0), (0.0, 0.0, 0.0), np.eye(3))
        expected = probability > threshold
        if organ is not None:
            expected &= organ
        expected = ndimage.binary_fill_holes(expected) & (organ if organ is not None else True)
        labels, _ = ndimage.label(expected)
        sizes = np.bincount(labels.ravel())[1:] * 3.0
        expected = np.isin(labels, np.flatnonzero(sizes >= 20) + 1)
        mask, count = binary_mask(volume, threshold, organ=organ, fill_holes=True, min_component_mm3=20)
        assert np.array_equal(mask.array.astype(bool), expected) and count == int((sizes >= 20).sum())
    empty, count = binary_mask(volume, 2.0, fill_holes=True, min_component_mm3=20)
    assert count == 0 and not empty.array.any() and empty.array.dtype == np.uint8


def test_too_large_a_volume_is_refused_with_advice(segmenter, oblique_phantom, monkeypatch):
    monkeypatch.setenv("DIFFUGTS_MEMORY_BUDGET_GB", "0.2")
    volume = oblique_phantom.image.like(oblique_phantom.image.array + 2)  # not in the cache
    with pytest.raises(DiffuGTSError, match="--roi") as error:
        segmenter(volume, "kidney tumor", settings=FAST)
    assert "GB" in str(error.value)


def test_memory_is_checked_on_every_call_not_only_when_the_volume_is_encoded(segmenter, oblique_phantom,
                                                                             phantom_result, monkeypatch):
    """The cached volume of phantom_result, more prompts and seeds, a 1 MB budget: once it ran all the same."""
    monkeypatch.setenv("DIFFUGTS_MEMORY_BUDGET_GB", "0.001")
    misses = segmenter.volumes.misses
    with pytest.raises(DiffuGTSError, match="needs about .* more than the 1.0 MB that can be used now"):
        segmenter(oblique_phantom.image, ["kidney tumor", "liver tumor", "lung tumor"],
                  settings=replace(FAST, seeds=(0, 1, 2, 3)))
    assert segmenter.volumes.misses == misses


def test_on_a_gpu_the_devices_free_memory_is_checked(oblique_phantom, monkeypatch):
    from diffugts.backbone.registry import get_config
    from diffugts.segment.memory import check_memory, model_grid_bytes

    config = get_config("demo-ct")
    need = model_grid_bytes(oblique_phantom.image, config, prompts=1, seeds=3)
    free = {"device": need // 2, "reserved": need // 4, "allocated": 0}  # torch's own unused cache counts too
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free["device"], 80 * 2**30))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: free["reserved"])
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: free["allocated"])
    with pytest.raises(DiffuGTSError, match=r"of GPU memory, more than the .* free on cuda:0\. .*free the GPU"):
        check_memory(oblique_phantom.image, config, prompts=1, seeds=3, device="cuda:0")
    check_memory(oblique_phantom.image, config, prompts=1, seeds=3, device="cpu")  # no GPU involved
    free["reserved"] = need
    check_memory(oblique_phantom.image, config, prompts=1, seeds=3, device="cuda:0")


def test_voxels_that_cannot_be_segmented_are_named(segmenter, oblique_phantom):
    """NaN and Inf once gave a 7 mL finding without a word; a constant or one-voxel image was 'not MR'."""
    image = oblique_phantom.image
    values = image.array.astype(np.float32)
    values.flat[[5, 50, 500]] = np.nan
    values.flat[[7, 70]] = (np.inf, -np.inf)
    constant = image.like(np.full(image.array.shape, -1000, np.int16))
    point = Volume(np.zeros((1, 1, 1), np.float32), (1, 1, 1), (0, 0, 0), np.eye(3), modality="CT")
    for volume, message in ((image.like(values), "5 voxels are NaN or infinite (3 NaN, 2 infinite)"),
                            (constant, "every voxel has the value -1000: the image holds nothing to segment"),
                            (point, "the image has 1x1x1 voxels: too small to segment")):
        with pytest.raises(InputError, match=re.escape(message)):
            segmenter(volume, "kidney tumor", settings=FAST)
    flat_slice = image.like(np.repeat(image.array[:1], image.array.shape[0], axis=0))  # varies within slices
    segmenter(flat_slice, "kidney tumor", settings=FAST)


def test_wrong_modality_and_empty_prompt_are_clear_errors(segmenter, oblique_phantom):
    with pytest.raises(DiffuGTSError, match="the prompt is empty"):
        segmenter(oblique_phantom.image, ["kidney tumor", " "], settings=FAST)
    with pytest.raises(DiffuGTSError, match="does not model MR"):
        segmenter(oblique_phantom.image, "kidney tumor", settings=FAST, modality="MR")


def _cli(*args: str, home) -> subprocess.CompletedProcess:
    env = {**os.environ, "DIFFUGTS_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "diffugts", "--progress", "none", "segment", *args],
                          capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_segment_command_on_the_bundled_real_case(tmp_path):
    from diffugts.demo import DEMO_IMAGE, DEMO_PROMPT

    out = tmp_path / "out"
    result = _cli(str(DEMO_IMAGE), "--prompt", DEMO_PROMPT, "--fast", "--threads", "2", "--out", str(out),
                  home=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(output_names(1))
    for name in ("labels.nii.gz", "probability_1.nii.gz", "pseudo_healthy.nii.gz", "segmentation.seg.nrrd"):
        assert read_grid(out / name) == read_grid(DEMO_IMAGE), name
    report = json.loads((out / "report.json").read_text())
    assert report["prompts"][0]["prompt"] == DEMO_PROMPT and report["prompts"][0]["organ"] == "lung"
    assert (out / "quicklook.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the shipped (phantom-trained) head finds nothing here: said plainly, with an empty mask
    entry = report["prompts"][0]
    assert entry["found"] is False and entry["volume_ml"] == 0.0
    assert entry["organ_prior"]["organ"] == "lung" and entry["organ_prior"]["method"] == "rule"
    assert f"{DEMO_PROMPT!r}: not found (presence" in result.stdout


def test_segment_command_errors_are_one_line(tmp_path):
    """Data-free (a fresh clone has no ../shared data): an MR phantom stands in for a real MR scan."""
    from diffugts.demo import DEMO_IMAGE
    from diffugts.io import write_volume

    mr = write_volume(make_phantom("brain glioma", "MR", (24, 24, 16), seed=0).image, tmp_path / "brain_t1c.nii.gz")
    checks = [
        ((str(DEMO_IMAGE), "--prompt", "", "--out", str(tmp_path / "a")), "the prompt is empty"),
        ((str(tmp_path / "missing.nii.gz"), "--prompt", "lung tumor", "--out", str(tmp_path / "b")), "missing.nii.gz"),
        ((str(DEMO_IMAGE), "--prompt", "lung tumor", "--roi", "1:2", "--out", str(tmp_path / "c")), "--roi"),
        ((str(mr), "--prompt", "brain tumor", "--out", str(tmp_path / "d")), "no MR model ships yet"),
        ((str(mr), "--prompt", "brain tumor", "--backbone", "demo-ct", "--out", str(tmp_path / "e")),
         "does not model MR-T1c images"),
    ]
    for args, expected in checks:
        result = _cli(*args, home=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("diffugts: error:") and expected in lines[0], result.stderr
    assert not any((tmp_path / name).exists() for name in "abcde")


def test_refinement_trained_in_the_test_improves_on_its_start(segmenter, tmp_path):
    from diffugts.segment.refine import RefineConfig, RefineHead
    from diffugts.segment.train import prepare_examples, train_refine
    from diffugts.segment.training_config import RefineTrainingConfig

    config = RefineTrainingConfig(categories=["kidney tumor", "liver tumor"], cases_per_category=1, healthy_cases=0, size=32,
                                  seeds=1, steps=60, checkpoint_every=30, learning_rate=5e-3, patch=32)
    torch.manual_seed(0)
    trainee = Segmenter(segmenter.backbone, segmenter.text_encoder, segmenter.heads,
                        RefineHead(RefineConfig()), attention_threshold=segmenter.attention_threshold)
    head, report = train_refine(trainee, config, tmp_path)
    losses = torch.load(tmp_path / "training_state.pt", weights_only=True)["losses"]
    assert np.mean(losses[-15:]) < np.mean(losses[:15])
    assert report["examples"] == 4  # two phantoms, each with its own prompt and the other organ's
    assert (tmp_path / "refine_head.safetensors").is_file() and 0 < report["threshold"] < 1
    # a resumed run reads each scan's prepared examples back instead of encoding and inpainting again
    assert sorted(p.name for p in (tmp_path / "examples").iterdir()) == ["scan_00000.safetensors",
                                                                         "scan_00001.safetensors"]
    trainee.encode = lambda *args, **kwargs: pytest.fail("a stored scan was prepared again")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("diffugts.segment.train.make_phantom", lambda *a, **k: pytest.fail("a stored scan was made again"))
        reloaded = prepare_examples(trainee, config, tmp_path / "examples")
    assert len(reloaded) == 4 and all(e.inputs.dtype == torch.float16 and e.target.shape[2:] == e.inputs.shape[2:]
                                      and e.valid == tuple(e.inputs.shape[2:]) for e in reloaded)
    assert any(e.target.any() for e in reloaded) and not all(e.target.any() for e in reloaded)


def test_label_map_gives_overlaps_to_the_more_probable_prompt_and_keeps_filled_holes(phantom_result):
    from diffugts.segment.write import label_map

    first, second = phantom_result.findings
    shape = first.mask.array.shape
    masks = [np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)]
    probabilities = [np.zeros(shape, np.float32), np.zeros(shape, np.float32)]
    masks[0].flat[[0, 1, 3]] = 1
    probabilities[0].flat[[0, 1, 3]] = (0.9, 0.6, 0.7)
    masks[1].flat[[0, 1, 2, 3]] = 1
    probabilities[1].flat[[0, 1, 2, 3]] = (0.8, 0.7, 0.0, 0.7)  # voxel 2: a filled hole, probability 0
    result = replace(phantom_result, findings=[
        replace(first, mask=first.mask.like(masks[0]), probability=first.probability.like(probabilities[0])),
        replace(second, mask=second.mask.like(masks[1]), probability=second.probability.like(probabilities[1]))])
    labels = label_map(result)
    assert labels.flat[:5].tolist() == [1, 2, 2, 1, 0]


def test_a_tumor_its_organ_prior_misses_is_no_training_example(segmenter, monkeypatch):
    """As a target, a tumor outside its prompt's search region would be cut to nothing: it would teach the head
    that tumors are background."""
    from diffugts.data.phantom import Phantom
    from diffugts.segment.train import prepare_examples
    from diffugts.segment.training_config import RefineTrainingConfig

    config = RefineTrainingConfig(categories=["kidney tumor"], cases_per_category=1, healthy_cases=0, size=32)
    found = prepare_examples(segmenter, config)
    assert len(found) == 1 and found[0].target.any()
    monkeypatch.setattr(Phantom, "organ_mask", lambda phantom, organ: phantom.organs.like(0 * phantom.organs.array))
    assert prepare_examples(segmenter, config) == []


def test_the_refine_learning_rate_warms_up_peaks_and_decays_as_a_function_of_the_step():
    from diffugts.training import one_cycle_lr

    rates = [one_cycle_lr(step, 100, 2e-3) for step in range(100)]
    assert rates[0] == pytest.approx(2e-4) and max(rates) == pytest.approx(2e-3) == rates[9]
    assert all(a >= b for a, b in zip(rates[9:], rates[10:])) and rates[-1] < 1e-5
