"""Tumors synthesized into tumor-free hosts (diffugts.data.synth, `diffugts data synth`).

Hosts are small tumor-free phantoms written as a corpus folder (the corpus contract: corpus.csv, images on
grids of any orientation, oblique too, organ maps in the engine's vocabulary), so the tests run without
real data.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from diffugts.cli import main
from diffugts.data import read_dataset
from diffugts.data.corpus import CORPUS_COLUMNS
from diffugts.data.phantom import make_phantom
from diffugts.data.phantom.tissues import T
from diffugts.data.synth import RECIPES, write_synth_set
from diffugts.errors import DiffuGTSError
from diffugts.evaluation.organs import organ_mask
from diffugts.io import read_volume, write_volume
from diffugts.organs.labels import LABEL_OF

SIZE = 40
TISSUE_ORGANS = {"liver": "liver", "kidney": "kidney", "pancreas": "pancreas", "lung": "lung", "lung vessel": "lung",
                 "colon wall": "colon", "colon lumen": "colon", "bone marrow": "bone", "cortical bone": "bone",
                 "gray matter": "brain", "white matter": "brain", "ventricle": "brain", "muscle": "muscle",
                 "blood": "vessel", "spleen": "spleen", "bladder": "urinary bladder"}
# host name -> (modality, organs it must show, whether its grid must be oblique)
HOSTS = {"abdomen_ct": ("CT", ("liver", "kidney", "pancreas"), False),
         "oblique_ct": ("CT", ("kidney",), True),
         "chest_ct": ("CT", ("lung",), False),
         "brain_flair": ("MR-FLAIR", ("brain",), False),
         "brain_t1c": ("MR-T1c", ("brain",), False)}


def _host(modality: str, organs: tuple[str, ...], oblique: bool):
    """The first healthy phantom (by seed) that shows ``organs`` amply on a grid of 100 mm or more."""
    for seed in range(400):
        phantom = make_phantom("healthy", modality, size=SIZE, seed=seed)
        image = phantom.image
        is_oblique = not np.allclose(np.abs(image.direction), np.round(np.abs(image.direction)))
        if is_oblique != oblique or min(n * s for n, s in zip(image.size, image.spacing)) < 100:
            continue
        vocabulary = np.zeros(image.array.shape, dtype=np.uint8)
        for tissue, organ in TISSUE_ORGANS.items():
            vocabulary[phantom.organs.array == T[tissue]] = LABEL_OF[organ]
        if all((vocabulary == LABEL_OF[o]).sum() * image.voxel_volume_ml > 20 for o in organs):
            return image, image.like(vocabulary)
    raise AssertionError(f"no phantom host for {organs}")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A corpus folder of five tumor-free hosts, all in the validation split."""
    folder = tmp_path_factory.mktemp("corpus")
    rows = []
    for name, (modality, organs, oblique) in HOSTS.items():
        image, vocabulary = _host(modality, organs, oblique)
        write_volume(image, folder / f"{name}.nii.gz")
        write_volume(vocabulary, folder / f"{name}_organs.nii.gz")
        rows.append({"case_id": name, "patient": name, "split": "validation", "image": f"{name}.nii.gz",
                     "modality": modality, "body_region": "brain" if "brain" in organs else "abdomen",
                     "tumor": "no", "tumor_mask": "", "tumor_prompt": "", "organs": f"{name}_organs.nii.gz",
                     "source_dataset": "phantom", "source_file": name, "licence": "Apache-2.0",
                     "licence_class": "permissive", "sha256": "", "size_xyz": "", "spacing_xyz": "", "notes": ""})
    with (folder / "corpus.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, CORPUS_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return folder


CATEGORIES = ["liver tumor", "kidney cyst", "kidney tumor", "pancreatic tumor", "lung tumor", "brain metastasis",
              "meningioma", "brain glioma", "healthy"]


@pytest.fixture(scope="module")
def synth_set(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    write_synth_set(corpus, out, 2 * len(CATEGORIES), CATEGORIES, seed=5)
    return out


def _rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _facts(folder: Path) -> dict[str, dict]:
    return {case["case_id"]: case for case in json.loads((folder / "synth.json").read_text())["cases"]}


def _host_of(corpus: Path, facts: dict) -> tuple:
    return read_volume(corpus / f"{facts['host']}.nii.gz"), read_volume(corpus / f"{facts['host']}_organs.nii.gz")


def test_every_output_lies_on_its_hosts_exact_grid_oblique_too(corpus, synth_set) -> None:
    facts, hosts = _facts(synth_set), set()
    for row in _rows(synth_set):
        host, _ = _host_of(corpus, facts[row["case_id"]])
        hosts.add(facts[row["case_id"]]["host"])
        for column in ("image", "mask", "organ_mask"):
            volume = read_volume(synth_set / row[column])
            assert volume.grid.matches(host.grid, 1e-6), (row["case_id"], column)  # NIfTI stores float32
        assert read_volume(synth_set / row["image"]).array.dtype == host.array.dtype
        assert read_volume(synth_set / row["mask"]).array.dtype == np.uint8
    assert "oblique_ct" in hosts


def test_lesions_lie_in_their_organ_and_border_ones_touch_it(corpus, synth_set) -> None:
    facts = _facts(synth_set)
    for row in _rows(synth_set):
        case = facts[row["case_id"]]
        if case["category"] == "healthy":
            continue
        _, organs = _host_of(corpus, case)
        mask = read_volume(synth_set / row["mask"]).array > 0
        recipe = RECIPES[case["category"]]
        inside = float((organs.array[mask] == LABEL_OF[recipe.host]).mean())
        if recipe.placement == "border":
            assert inside > 0.05, (row["case_id"], inside)  # grows out of the organ: touches it
        elif case["category"] not in ("brain glioma", "brain metastasis", "meningioma"):
            assert inside > 0.6, (row["case_id"], inside)  # mass effect pushes the organ's edge a little
        else:
            assert inside > 0.9, (row["case_id"], inside)


def test_mask_is_there_and_of_the_categorys_size(synth_set) -> None:
    facts = _facts(synth_set)
    for row in _rows(synth_set):
        case = facts[row["case_id"]]
        mask = read_volume(synth_set / row["mask"])
        if case["category"] == "healthy":
            assert not mask.array.any()
            continue
        low, high = RECIPES[case["category"]].diameter_mm
        assert low <= case["diameter_mm"] <= high
        equivalent = (6 * mask.array.sum() * mask.voxel_volume_ml * 1000 / np.pi) ** (1 / 3)
        edema = case["category"] in ("brain glioma", "brain metastasis") and row["modality"] == "MR-FLAIR"
        assert 0.2 * case["diameter_mm"] < equivalent < (3.5 if edema else 1.2) * case["diameter_mm"], row["case_id"]


# category -> modality -> +1 brighter than the host organ, -1 darker
DIRECTIONS = {"kidney cyst": {"CT": -1}, "pancreatic tumor": {"CT": -1}, "lung tumor": {"CT": +1},
              "brain metastasis": {"MR-FLAIR": +1, "MR-T1c": +1}, "meningioma": {"MR-T1c": +1, "MR-FLAIR": +1},
              "brain glioma": {"MR-FLAIR": +1}}


def test_intensity_differs_from_the_host_organ_in_the_categorys_direction(corpus, synth_set) -> None:
    facts, checked = _facts(synth_set), 0
    for row in _rows(synth_set):
        case = facts[row["case_id"]]
        wanted = DIRECTIONS.get(case["category"], {}).get(row["modality"])
        if wanted is None:
            continue
        host, organs = _host_of(corpus, case)
        image = read_volume(synth_set / row["image"]).array.astype(float)
        mask = read_volume(synth_set / row["mask"]).array > 0
        organ = host.array[organs.array == LABEL_OF[RECIPES[case["category"]].host]].astype(float)
        assert np.sign(np.median(image[mask]) - np.median(organ)) == wanted, (row["case_id"], row["modality"])
        checked += 1
    assert checked >= 4


def test_healthy_cases_are_the_host_untouched_with_a_fitting_prompt(corpus, synth_set) -> None:
    facts = _facts(synth_set)
    healthy = [row for row in _rows(synth_set) if facts[row["case_id"]]["category"] == "healthy"]
    assert healthy
    for row in healthy:
        host, _ = _host_of(corpus, facts[row["case_id"]])
        np.testing.assert_array_equal(read_volume(synth_set / row["image"]).array, host.array)
        assert row["tumor_prompt"] in RECIPES and read_volume(synth_set / row["organ_mask"]).array.any()


def test_tumor_free_cases_take_every_host_in_turn(corpus, tmp_path) -> None:
    """Negative controls of every modality and body region, not whichever hosts the draws favour."""
    hosts = {row["case_id"] for row in csv.DictReader((corpus / "corpus.csv").open(encoding="utf-8"))}
    out = tmp_path / "negatives"
    write_synth_set(corpus, out, len(hosts), ["healthy"], seed=11)
    assert {case["host"] for case in _facts(out).values()} == hosts


def test_same_seed_same_cases_other_seed_other_cases(corpus, tmp_path) -> None:
    categories = ["kidney tumor", "brain metastasis"]
    first, again, other = (write_synth_set(corpus, tmp_path / name, 2, categories, seed=seed).parent
                           for name, seed in (("a", 1), ("b", 1), ("c", 2)))
    for row in _rows(first):
        for column in ("image", "mask", "organ_mask"):
            a, b = read_volume(first / row[column]), read_volume(again / row[column])
            assert a.array.tobytes() == b.array.tobytes() and a.grid == b.grid
    changed = [not np.array_equal(read_volume(first / r["image"]).array, read_volume(other / s["image"]).array)
               for r, s in zip(_rows(first), _rows(other))]
    assert all(changed)


def test_inputs_are_never_written(corpus, tmp_path) -> None:
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in corpus.iterdir()}
    write_synth_set(corpus, tmp_path / "out", 2, ["liver tumor", "healthy"], seed=0)
    assert digests == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in corpus.iterdir()}
    with pytest.raises(DiffuGTSError, match="is the corpus folder itself"):
        write_synth_set(corpus, corpus, 1, ["liver tumor"])
    with pytest.raises(DiffuGTSError, match="already holds a set"):
        write_synth_set(corpus, tmp_path / "out", 1, ["liver tumor"])


def test_manifest_reads_as_a_dataset_and_evaluation_uses_its_organ_mask(synth_set) -> None:
    cases = read_dataset(synth_set)
    assert len(cases) == 2 * len(CATEGORIES)
    for case in cases:
        images, truth = case.load()
        image = next(iter(images.values()))
        organ = organ_mask(case, image)
        written = read_volume(case.organ_mask).array > 0
        np.testing.assert_array_equal(organ.array > 0, written)
        assert organ.grid.matches(image.grid, 1e-6)
        assert case.category in RECIPES and case.organ == RECIPES[case.category].host or case.organ == "brain"
        if truth.array.any():
            assert (organ.array[truth.array > 0] > 0).all()  # the organ mask holds its tumor


def test_a_category_no_host_shows_is_one_clear_error(corpus, tmp_path) -> None:
    with pytest.raises(DiffuGTSError, match="can show a breast mass"):
        write_synth_set(corpus, tmp_path / "x", 1, ["breast mass"])


def test_cli_writes_a_set_and_refuses_unknown_categories(corpus, tmp_path, capsys) -> None:
    out = tmp_path / "cli"
    assert main(["--progress", "none", "data", "synth", str(corpus), "--out", str(out), "--n", "2",
                 "--categories", "renal cyst,healthy", "--seed", "4"]) == 0
    assert [row["tumor_prompt"] for row in _rows(out)][0] == "kidney cyst"
    assert main(["--progress", "none", "data", "synth", str(corpus), "--out", str(tmp_path / "y"),
                 "--categories", "heart tumor"]) == 2
    assert "unknown tumor category 'heart tumor'" in capsys.readouterr().err
