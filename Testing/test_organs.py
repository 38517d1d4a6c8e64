"""Organ priors: on the input's exact grid for any geometry, lungs/bone/body by rule, atlas organs on real CT,
the body fallback and its note, the user's mask winning, and the organs command's files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from geometry_cases import DIRECTIONS, world_points

from diffugts.cli import main
from diffugts.errors import InputError
from diffugts.io import Volume, read_volume, write_volume
from diffugts.organs import organ_for, organ_prior, organ_priors, user_prior
from diffugts.organs.labels import LABEL_OF

TRAIN = Path(os.environ.get("DIFFUGTS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared/data/real")).parent \
    / "train"
LUNG_CENTRES = {"right": (-38.0, 0.0, 0.0), "left": (38.0, 0.0, 0.0)}  # LPS: x grows to the patient's left


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * float((a & b).sum()) / max(1, int(a.sum()) + int(b.sum()))


def phantom_ct(direction: str, seed: int = 0) -> tuple[Volume, dict[str, np.ndarray]]:
    """A chest-like CT on an awkward grid: body (40 HU), two lungs (-850 HU), a spine (500 HU), in LPS mm."""
    shape = (40, 50, 60)
    grid = Volume(np.zeros(shape, np.int16), (3.1, 3.7, 4.3), (0.0, 0.0, 0.0), DIRECTIONS[direction], modality="CT")
    centre = grid.grid.ijk_to_lps @ np.array([*(np.array(grid.size) - 1) / 2, 1.0])
    grid.origin = tuple(np.asarray(grid.origin) - centre[:3])  # the grid's centre at LPS (0, 0, 0)
    p = world_points(grid)
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    truth = {"body": (x / 80) ** 2 + (y / 65) ** 2 + (z / 80) ** 2 <= 1,
             "bone": ((x / 9) ** 2 + ((y - 45) / 9) ** 2 <= 1) & (np.abs(z) <= 60)}
    for side, (cx, cy, cz) in LUNG_CENTRES.items():
        truth[f"{side} lung"] = ((x - cx) / 24) ** 2 + ((y - cy) / 32) ** 2 + ((z - cz) / 50) ** 2 <= 1
    truth["lung"] = truth["left lung"] | truth["right lung"]
    rng = np.random.default_rng(seed)
    array = np.full(shape, -1000.0) + rng.normal(0, 15, shape)
    array[truth["body"]] = 40 + rng.normal(0, 15, int(truth["body"].sum()))
    array[truth["lung"]] = -850 + rng.normal(0, 20, int(truth["lung"].sum()))
    array[truth["bone"] & truth["body"]] = 500
    return grid.like(np.round(array).astype(np.int16)), truth


@pytest.mark.parametrize("direction", sorted(DIRECTIONS))
def test_rule_priors_lie_on_the_exact_grid_and_find_the_organs(direction):
    image, truth = phantom_ct(direction)
    for prior in organ_priors(image, ["body", "lung", "left lung", "right lung", "bone"]):
        probability = prior.probability
        assert probability.grid == image.grid  # exactly, not within a tolerance
        assert probability.array.dtype == np.float32
        assert 0.0 <= probability.array.min() and probability.array.max() <= 1.0
        assert prior.method == "rule" and prior.note == ""
        found = prior.mask().array > 0
        reference = truth[prior.organ] & truth["body"]
        assert dice(found, reference) > (0.85 if prior.organ != "bone" else 0.6), (direction, prior.organ)


def test_the_lung_prior_holds_a_central_nodule_and_one_against_the_pleura():
    """A tumor prompt searches the lung: soft-tissue nodules inside it and in a notch of its wall are lung."""
    image, truth = phantom_ct("LPS")  # axis-aligned: on the oblique grid a 7 mm nodule is a few partial voxels
    p = world_points(image)
    cx, cy, cz = LUNG_CENTRES["right"]
    central = (p[..., 0] - cx) ** 2 + (p[..., 1] - cy) ** 2 + (p[..., 2] - cz) ** 2 <= 8.0 ** 2
    pleural = (p[..., 0] - (cx - 22.0)) ** 2 + (p[..., 1] - cy) ** 2 + (p[..., 2] - cz) ** 2 <= 7.0 ** 2
    nodules = (central | pleural) & truth["lung"]
    array = image.array.copy()
    array[nodules] = 30
    lung = organ_prior(image.like(array), "lung").mask().array > 0
    assert lung[nodules].mean() > 0.95
    assert dice(lung, truth["lung"] & truth["body"]) > 0.85  # closing did not swallow the mediastinum


def test_an_organ_without_a_prior_gets_the_body_and_a_note_saying_so():
    image, _ = phantom_ct("oblique")
    breast, body = organ_priors(image, ["breast", "body"])
    assert breast.method == "body"
    assert breast.note == "no prior for 'breast' on CT: the body is used"
    np.testing.assert_array_equal(breast.probability.array, body.probability.array)


def test_a_blank_image_is_refused_and_a_single_slice_gets_the_body_for_atlas_organs():
    blank = Volume(np.full((10, 20, 20), -1000, np.int16), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3), modality="CT")
    with pytest.raises(InputError, match="constant"):
        organ_prior(blank, "liver")
    image, _ = phantom_ct("LPS")
    one_slice = Volume(image.array[20:21], image.spacing, image.origin, image.direction, modality="CT")
    prior = organ_prior(one_slice, "liver")
    assert prior.method == "body" and "too small to register" in prior.note
    assert prior.probability.grid == one_slice.grid


def test_prompts_name_their_organ():
    assert organ_for("mass in the pancreatic head") == "pancreas"
    assert organ_for("Liver") == "liver"
    assert organ_for("left lung") == "left lung"
    assert organ_for("renal cyst") == "kidney"
    assert organ_for("bladder tumour") == "urinary bladder"
    assert organ_for("breast mass") == "breast"
    assert organ_for("something odd") == "something odd"


def test_skull_stripped_brain_is_its_foreground_and_a_body_mr_has_no_brain():
    brain = Volume(np.zeros((50, 60, 50), np.float32), (3.0, 3.0, 3.0), (0.0, 0.0, 0.0), DIRECTIONS["RAS"])
    p = world_points(brain) - np.array([75.0, 90.0, 75.0]) * np.array([-1, -1, 1])
    inside = (p[..., 0] / 65) ** 2 + (p[..., 1] / 80) ** 2 + (p[..., 2] / 60) ** 2 <= 1  # about 1.3 L
    image = brain.like(np.where(inside, 300.0, 0.0).astype(np.float32), modality="MR")
    prior = organ_prior(image, "brain")
    assert prior.method == "foreground" and "skull-stripped" in prior.note
    assert dice(prior.mask().array > 0, inside) > 0.9
    wide = Volume(np.zeros((20, 100, 130), np.float32), (3.0, 3.0, 3.0), (0.0, 0.0, 0.0), np.eye(3), modality="MR")
    wide.array[:, 10:90, 10:120] = 200.0  # a 330 mm wide abdomen slab
    prior = organ_prior(wide, "brain")
    assert prior.method == "body" and "not a head" in prior.note


def test_the_users_mask_wins_and_an_off_grid_one_is_refused(tmp_path, capsys):
    image, truth = phantom_ct("LPS")
    mask = image.like(truth["bone"].astype(np.uint8))
    prior = user_prior(image, "liver", mask)
    assert prior.method == "user"
    np.testing.assert_array_equal(prior.mask().array, mask.array)
    write_volume(image, tmp_path / "ct.nii.gz")
    write_volume(mask, tmp_path / "organ.nii.gz")
    assert main(["organs", str(tmp_path / "ct.nii.gz"), "--organ", "liver tumor", "--organ-mask",
                 str(tmp_path / "organ.nii.gz"), "--out", str(tmp_path / "out"), "--progress", "none"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["organs"][0]["method"] == "user" and report["organs"][0]["organ"] == "liver"
    np.testing.assert_array_equal(read_volume(tmp_path / "out" / "liver_mask.nii.gz").array, mask.array)
    shifted = Volume(mask.array, mask.spacing, (5.0, 0.0, 0.0), mask.direction)
    write_volume(shifted, tmp_path / "shifted.nii.gz")
    capsys.readouterr()
    assert main(["organs", str(tmp_path / "ct.nii.gz"), "--organ", "liver", "--organ-mask",
                 str(tmp_path / "shifted.nii.gz"), "--out", str(tmp_path / "out2"), "--progress", "none"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "not on the image's grid" in error
    assert not (tmp_path / "out2").exists()


def test_the_command_writes_prior_mask_and_report(tmp_path):
    image, truth = phantom_ct("oblique")
    write_volume(image, tmp_path / "ct.nii.gz")
    out = tmp_path / "out"
    assert main(["organs", str(tmp_path / "ct.nii.gz"), "--organ", "lung nodule", "--organ", "breast mass",
                 "--out", str(out), "--progress", "none"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [row["organ"] for row in report["organs"]] == ["lung", "breast"]
    assert report["organs"][1]["note"] == "no prior for 'breast' on CT: the body is used"
    source = read_volume(tmp_path / "ct.nii.gz")
    prior, mask = read_volume(out / "lung_prior.nii.gz"), read_volume(out / "lung_mask.nii.gz")
    assert prior.grid.matches(source.grid) and mask.grid.matches(source.grid)
    assert prior.array.dtype == np.float32 and 0 <= prior.array.min() and prior.array.max() <= 1
    assert mask.array.dtype == np.uint8 and set(np.unique(mask.array)) == {0, 1}
    np.testing.assert_array_equal(mask.array, (prior.array >= 0.5).astype(np.uint8))
    assert report["organs"][0]["volume_ml"] == pytest.approx(mask.array.sum() * source.voxel_volume_ml, rel=1e-3)
    assert dice(mask.array > 0, truth["lung"]) > 0.85


@pytest.fixture(scope="module")
def train_data() -> Path:
    if not (TRAIN / "manifest.csv").is_file():
        pytest.skip(f"shared training data not found at {TRAIN}")
    return TRAIN


def _ts_labels(train_data: Path, case: str) -> np.ndarray:
    from diffugts.organs.make_atlases import vocabulary_labels

    legend = json.loads((train_data / "totalsegmentator_label_maps.json").read_text())["total"]
    labels = read_volume(train_data / "ct" / f"{case}_labels.nii.gz")
    return vocabulary_labels(labels, {int(k): v for k, v in legend.items()}).array


def test_lungs_on_a_real_ct_crop(train_data):
    image = read_volume(train_data / "ct" / "ts_example_ct.nii.gz")
    top = slice(80, None)  # lower chest: the lung bases above the liver and bowel gas
    crop = Volume(image.array[top], image.spacing, image.grid.ijk_to_lps[:3] @ [0, 0, 80, 1], image.direction,
                  modality="CT")
    lungs = organ_prior(crop, "lung").mask().array > 0
    assert dice(lungs, _ts_labels(train_data, "ts_example_ct")[top] == LABEL_OF["lung"]) > 0.8  # measured 0.90


@pytest.mark.slow
def test_atlas_registration_finds_the_liver_on_a_real_ct(train_data):
    image = read_volume(train_data / "ct" / "ts_example_ct_dicom.nii.gz")
    # leave-one-patient-out: this is patient ts_p2, so only the other patient's atlas (ct_ts_p1) is used
    prior = organ_priors(image, ["liver"], exclude_patients={"ts_p2"})[0]
    assert prior.method == "atlas" and prior.probability.grid == image.grid
    reference = _ts_labels(train_data, "ts_example_ct_dicom") == LABEL_OF["liver"]
    assert dice(prior.mask().array > 0, reference) > 0.75  # measured 0.85


def test_refinement_pulls_a_shifted_prior_onto_the_organs_intensity_and_leaves_mixed_organs_alone():
    from diffugts.organs.refine import refine

    z, y, x = np.ogrid[:40, :40, :40]
    organ = (x - 20) ** 2 + (y - 20) ** 2 + (z - 20) ** 2 <= 100
    rng = np.random.default_rng(0)
    ct = np.where(organ, 60.0, 0.0) + rng.normal(0, 5, organ.shape)
    shifted = np.roll(organ, 4, axis=2)
    prior = np.clip(shifted * 0.9 + 0.05, 0, 1).astype(np.float32)
    sharpened = refine(prior, ct, 0.027)
    assert dice(sharpened >= 0.5, organ) > dice(prior >= 0.5, organ) + 0.1
    mixed = np.where(organ, rng.choice([-900.0, 40.0], organ.shape), 0.0)  # gas and content: no single HU
    np.testing.assert_array_equal(refine(prior, mixed, 0.027), prior)


def test_the_shipped_atlases_are_listed_small_and_in_the_organ_vocabulary():
    from diffugts.organs.atlas import ATLAS_DIR, atlases

    files = [path for atlas in (*atlases("CT"), *atlases("MR")) for path in (atlas.image, atlas.labels) if path]
    assert all(path.is_file() for path in files) and {a.patient for a in atlases("CT")} == {"ts_p1", "ts_p2"}
    assert sum(path.stat().st_size for path in ATLAS_DIR.iterdir()) < 3_000_000
    labels = read_volume(atlases("CT")[0].labels)
    assert set(np.unique(labels.array)) - {0} <= set(LABEL_OF.values())
    assert {"liver", "kidney", "spleen", "pancreas", "colon"} <= set(atlases("CT")[0].organs)
