"""``diffugts data corpus``: RAS without interpolation, organ vocabularies, licences, duplicates, patients, the
demo case, splits and errors, on tiny sources built in tmp_path (and once on the developers' real data)."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from geometry_cases import make_volume, world_points

from diffugts.cli import main
from diffugts.data.corpus import DEMO_REASON, build_corpus, read_corpus
from diffugts.data.corpus.describe import modality_of, tumor_status
from diffugts.data.corpus.licence import licence_class
from diffugts.data.manifest import MANIFEST_COLUMNS
from diffugts.demo import DEMO_IMAGE
from diffugts.io import Volume, orientation_code, read_volume, write_volume
from diffugts.organs.labels import LABEL_OF

TRAIN_COLUMNS = ("patient", "organ_labels", "organ_legend", "extra_images")
PERMISSIVE = "BSD-3-Clause (test data)"


def write_manifest(folder: Path, rows: list[dict[str, str]]) -> Path:
    """A manifest in the train schema (real columns plus patient, organ_labels, organ_legend, extra_images)."""
    path = folder / "manifest.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*MANIFEST_COLUMNS, *TRAIN_COLUMNS])
        writer.writeheader()
        for row in rows:
            writer.writerow({"modality": "CT", "licence": PERMISSIVE, "mask_labels": "", **row})
    return path


def scan(folder: Path, name: str, seed: int, direction: str = "LPS", shape: tuple[int, int, int] = (7, 9, 11),
         dtype: str = "int16") -> Volume:
    """A random volume written to folder/name.nii.gz (noise: different seeds do not correlate)."""
    volume = make_volume(direction, dtype, shape, seed)
    write_volume(volume, folder / f"{name}.nii.gz")
    return volume


def corpus_rows(folder: Path) -> dict[str, dict[str, str]]:
    with (folder / "corpus.csv").open(newline="", encoding="utf-8") as handle:
        return {row["case_id"]: row for row in csv.DictReader(handle)}


def excluded_rows(folder: Path) -> dict[str, str]:
    with (folder / "excluded.csv").open(newline="", encoding="utf-8") as handle:
        return {row["case_id"]: row["reason"] for row in csv.DictReader(handle)}


def test_images_masks_and_organs_are_reoriented_to_ras_exactly(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    image = scan(source, "oblique_ct", 1, "oblique")
    mask = image.like((image.array > 500).astype(np.uint8))
    organs = image.like(np.where(image.array < -500, 1, np.where(image.array > 1500, 2, 0)).astype(np.uint8))
    organs.array[0, 0, :3] = 3
    write_volume(mask, source / "oblique_ct_mask.nii.gz")
    write_volume(organs, source / "oblique_ct_labels.nii.gz")
    manifest = write_manifest(source, [{
        "case_id": "oblique", "image": "oblique_ct.nii.gz", "mask": "oblique_ct_mask.nii.gz", "mask_labels": "1=tumor",
        "tumor_prompt": "liver tumor", "organ_labels": "oblique_ct_labels.nii.gz",
        "organ_legend": "1=liver; 2=aorta; 3=gyrus rectus"}])
    build_corpus(tmp_path / "corpus", [manifest], validation_fraction=0)
    [case] = read_corpus(tmp_path / "corpus")
    assert case.image.is_relative_to(tmp_path / "corpus" / "images") and case.split == "train"
    assert (case.tumor, case.modality, case.licence_class) == ("yes", "CT", "permissive")
    ras = case.load_image()
    assert orientation_code(ras.direction) == "RAS" and orientation_code(image.direction) != "RAS"
    # every voxel keeps its value at its world position: the original index of each RAS voxel's point is integral
    points = world_points(ras).reshape(-1, 3)
    index = (np.linalg.inv(image.grid.ijk_to_lps) @ np.c_[points, np.ones(len(points))].T)[:3].T
    assert np.allclose(index, np.round(index), atol=1e-3)
    i, j, k = np.round(index).astype(int).T
    for loaded, original in ((ras, image), (case.load_tumor(), mask)):
        assert np.array_equal(loaded.array.reshape(-1), original.array[k, j, i])
        assert loaded.grid.matches(ras.grid, 1e-6)
    vocabulary = case.load_organs()
    assert vocabulary.grid.matches(ras.grid, 1e-6)
    expected = np.select([organs.array == 1, organs.array == 2], [LABEL_OF["liver"], LABEL_OF["aorta"]], 0)
    assert np.array_equal(vocabulary.array.reshape(-1), expected[k, j, i])
    assert "gyrus rectus" in case.notes  # an unknown structure is dropped, with a note


def test_totalsegmentator_and_freesurfer_legends_become_the_organ_vocabulary(tmp_path: Path) -> None:
    image = scan(tmp_path, "ct", 2)
    labels = np.zeros(image.array.shape, np.uint8)
    labels[0], labels[1], labels[2], labels[3] = 1, 3, 5, 90
    write_volume(image.like(labels), tmp_path / "ct_labels.nii.gz")
    (tmp_path / "totalsegmentator_label_maps.json").write_text(json.dumps(
        {"total": {"1": "spleen", "3": "kidney_left", "5": "liver", "90": "face"}, "total_mr": {}}))
    brain = scan(tmp_path, "brain_t1", 3)
    write_volume(brain.like(np.where(brain.array > 0, 17, 0).astype(np.uint16)), tmp_path / "brain_aseg.nii.gz")
    manifest = write_manifest(tmp_path, [
        {"case_id": "ct", "image": "ct.nii.gz", "organ_labels": "ct_labels.nii.gz",
         "organ_legend": "totalsegmentator_total"},
        {"case_id": "brain", "image": "brain_t1.nii.gz", "modality": "MR", "organ_labels": "brain_aseg.nii.gz",
         "organ_legend": "freesurfer_aparc_a2009s_aseg"}])
    build_corpus(tmp_path / "corpus", [manifest])
    cases = {case.case_id: case for case in read_corpus(tmp_path / "corpus")}
    ct = cases["ct"].load_organs().array  # RAS of an LPS volume: i and j flipped, k kept
    assert [set(np.unique(ct[k])) for k in range(4)] == [{LABEL_OF[o]} for o in ("spleen", "kidney", "liver")] + [{0}]
    assert "face" in cases["ct"].notes
    assert cases["brain"].modality == "MR-T1"  # from the file name
    assert set(np.unique(cases["brain"].load_organs().array)) == {0, LABEL_OF["brain"]}


def test_licence_filter_leaves_out_a_non_commercial_case_and_says_so(tmp_path: Path, capsys) -> None:
    scan(tmp_path, "free", 4)
    scan(tmp_path, "nc", 5)
    manifest = write_manifest(tmp_path, [
        {"case_id": "free", "image": "free.nii.gz", "licence": "CC BY 4.0"},
        {"case_id": "nc", "image": "nc.nii.gz", "licence": "CC BY-NC-SA 4.0"}])
    assert main(["--progress", "none", "data", "corpus", "--out", str(tmp_path / "c"), str(manifest)]) == 0
    printed = capsys.readouterr().out
    assert "nc: non-commercial licence: CC BY-NC-SA 4.0" in printed
    assert list(corpus_rows(tmp_path / "c")) == ["free"]
    assert excluded_rows(tmp_path / "c")["nc"].startswith("non-commercial licence")
    assert main(["--progress", "none", "data", "corpus", "--licence", "any", "--out", str(tmp_path / "all"),
                 str(manifest)]) == 0
    assert {k: r["licence_class"] for k, r in corpus_rows(tmp_path / "all").items()} == {
        "free": "permissive", "nc": "non-commercial"}


@pytest.mark.parametrize(("text", "expected"), [
    ("CC0", "permissive"), ("CC-BY-SA 4.0", "permissive"), ("MIT (SCI Institute)", "permissive"),
    ("Apache-2.0 (repository licence; image provenance not stated in repo)", "permissive"),
    ("CC BY-NC 4.0 (NON-COMMERCIAL)", "non-commercial"), ("BraTS data use terms (non-commercial research)",
                                                          "non-commercial"),
    ("figshare dataset licence (CC BY 4.0 per figshare default - verify)", "unknown"),
    ("nilearn (BSD-3-Clause) lists the template licence as unknown", "unknown"), ("", "unknown"),
    ("copyright notice only", "unknown")])
def test_licence_classes(text: str, expected: str) -> None:
    assert licence_class(text) == expected


@pytest.mark.parametrize(("prompt", "notes", "expected"), [
    ("", "tumor-free appearing clinical CT", "no"), ("kidney tumor", "none (negative control; no tumor)", "no"),
    ("chronic stroke lesion (not tumour)", "", "unknown"), ("vestibular schwannoma (mask not included)", "", "unknown"),
    ("", "no lesion known", "no")])
def test_tumor_status_without_a_mask(prompt: str, notes: str, expected: str) -> None:
    assert tumor_status(False, prompt, notes) == expected
    assert tumor_status(True, prompt, notes) == "yes"


def test_modality_from_the_manifest_or_the_file_name() -> None:
    assert modality_of("MR", "x/mr_head_vs_seg_001_t1ce.nii.gz") == "MR-T1c"
    assert modality_of("MR", "stroke_FLAIR.nii.gz") == "MR-FLAIR"
    assert modality_of("MR", "chris_pd.nii.gz") == "MR-PD" and modality_of("MR", "head.nii.gz") == "MR"
    assert modality_of("MR-T2", "whatever.nii.gz") == "MR-T2"
    assert modality_of("", "abdomen_ct.nii.gz") == "CT" and modality_of("", "scan.nii.gz") is None


def test_exact_duplicates_are_dropped_and_the_strictest_licence_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    volume = scan(first, "head_t1", 6, dtype="int32")
    # the same voxels stored the other way round (RAS axes) and as int16: still the same scan
    flipped = Volume(volume.array[:, ::-1, ::-1].astype(np.int16).copy(), volume.spacing,
                     tuple(np.asarray(volume.origin) + volume.direction @ (np.asarray(volume.spacing) *
                                                                          np.array([volume.size[0] - 1,
                                                                                    volume.size[1] - 1, 0]))),
                     volume.direction @ np.diag([-1.0, -1.0, 1.0]))
    write_volume(flipped, second / "copy.nii.gz")
    scan(second, "other", 7)
    manifests = [write_manifest(first, [{"case_id": "niivue_t1", "image": "head_t1.nii.gz", "modality": "MR-T1",
                                         "licence": "BSD-2-Clause"}]),
                 write_manifest(second, [{"case_id": "chris_t1", "image": "copy.nii.gz", "modality": "MR-T1",
                                          "licence": "CC BY-NC 4.0"},
                                         {"case_id": "other", "image": "other.nii.gz", "modality": "MR-T1"}])]
    build_corpus(tmp_path / "any", manifests, licence="any")
    rows = corpus_rows(tmp_path / "any")
    assert sorted(rows) == ["chris_t1", "other"]
    assert rows["chris_t1"]["licence_class"] == "non-commercial"
    assert "exact duplicate: same voxels and grid as chris_t1" in excluded_rows(tmp_path / "any")["niivue_t1"]
    build_corpus(tmp_path / "permissive", manifests)
    excluded = excluded_rows(tmp_path / "permissive")
    assert list(corpus_rows(tmp_path / "permissive")) == ["other"]
    assert excluded["chris_t1"].startswith("non-commercial licence")
    assert "gives way to the group's most restrictive, non-commercial" in excluded["niivue_t1"]
    summary = json.loads((tmp_path / "permissive" / "corpus.json").read_text())
    assert summary["exact_duplicates"] == [{"kept": "chris_t1", "dropped": "niivue_t1", "licence_class": "permissive",
                                            "source_file": str((first / "head_t1.nii.gz").resolve())}]


def test_near_duplicates_are_linked_to_one_patient(tmp_path: Path) -> None:
    whole = scan(tmp_path, "whole", 8, shape=(12, 10, 9))
    # a block of slices whose header kept the parent's origin (as TotalSegmentator's example_ct_sm does)
    write_volume(Volume(whole.array[5:9].copy(), whole.spacing, whole.origin, whole.direction),
                 tmp_path / "part.nii.gz")
    rng = np.random.default_rng(0)
    for name, noise in (("rescan", 100), ("lookalike", 500)):  # voxel correlation about 0.996 and 0.92
        write_volume(whole.like((whole.array + rng.normal(0, noise, whole.array.shape)).astype(np.int16)),
                     tmp_path / f"{name}.nii.gz")
    scan(tmp_path, "stranger", 9, shape=(12, 10, 9))
    names = ("whole", "part", "rescan", "lookalike", "stranger")
    manifest = write_manifest(tmp_path, [{"case_id": name, "image": f"{name}.nii.gz"} for name in names])
    build_corpus(tmp_path / "corpus", [manifest], validation_fraction=0.5)
    rows = corpus_rows(tmp_path / "corpus")
    assert {name: rows[name]["patient"] for name in names} == {
        "whole": "part", "part": "part", "rescan": "part", "lookalike": "lookalike", "stranger": "stranger"}
    assert len({rows[name]["split"] for name in ("whole", "part", "rescan")}) == 1
    links = json.loads((tmp_path / "corpus" / "corpus.json").read_text())["linked_patients"]
    reasons = {tuple(link["cases"]): link["why"] for link in links}
    assert reasons[("part", "whole")] == "a block of whole at voxel (i, j, k) (0, 0, 5)"
    assert reasons[("rescan", "whole")].startswith("same grid, voxel correlation 0.99")
    assert len(links) == 2


def split_manifests(tmp_path: Path) -> list[Path]:
    manifests = []
    for family, modality in (("ct", "CT"), ("mr", "MR-T1")):
        folder = tmp_path / family
        folder.mkdir()
        rows = []
        for patient in range(4):
            for visit in range(2):
                name = f"{family}{patient}_{visit}"
                scan(folder, name, 100 * (family == "mr") + 10 * patient + visit)
                rows.append({"case_id": name, "image": f"{name}.nii.gz", "patient": f"{family}p{patient}",
                             "modality": modality})
        manifests.append(write_manifest(folder, rows))
    return manifests


def test_patients_are_split_deterministically_whatever_the_order(tmp_path: Path) -> None:
    ct, mr = split_manifests(tmp_path)
    build_corpus(tmp_path / "one", [ct, mr])
    build_corpus(tmp_path / "two", [mr, ct])
    assert (tmp_path / "one" / "corpus.csv").read_text() == (tmp_path / "two" / "corpus.csv").read_text()
    rows = corpus_rows(tmp_path / "one").values()
    split_of: dict[str, set[str]] = {}
    for row in rows:
        split_of.setdefault(row["patient"], set()).add(row["split"])
    assert all(len(splits) == 1 for splits in split_of.values())  # a patient's rows never straddle the split
    for family in ("ct", "mr"):
        validation = [p for p, s in split_of.items() if p.startswith(family) and s == {"validation"}]
        assert len(validation) == 1  # round(4 * 0.25)
    build_corpus(tmp_path / "seeded", [ct, mr], seed=1)
    assert [r["split"] for r in corpus_rows(tmp_path / "seeded").values()] != [r["split"] for r in rows]


def test_a_designated_validation_patient_takes_its_familys_validation_place(tmp_path: Path, capsys) -> None:
    ct, mr = split_manifests(tmp_path)
    build_corpus(tmp_path / "ranked", [ct, mr])
    ranked = {r["patient"]: r["split"] for r in corpus_rows(tmp_path / "ranked").values()}
    chosen = next(p for p, s in sorted(ranked.items()) if p.startswith("ct") and s == "train")
    build_corpus(tmp_path / "designated", [ct, mr], validation_patients=[chosen])
    designated = {r["patient"]: r["split"] for r in corpus_rows(tmp_path / "designated").values()}
    assert [p for p, s in designated.items() if p.startswith("ct") and s == "validation"] == [chosen]
    assert {p: s for p, s in designated.items() if p.startswith("mr")} == \
        {p: s for p, s in ranked.items() if p.startswith("mr")}
    assert main(["data", "corpus", "--out", str(tmp_path / "bad"), str(ct), "--validation-patient", "nobody"]) == 2
    assert "--validation-patient names nobody, which is no patient" in capsys.readouterr().err


def test_the_demo_case_is_never_in_the_corpus_even_renamed_or_inside_a_larger_scan(tmp_path: Path) -> None:
    shutil.copy(DEMO_IMAGE, tmp_path / "chest_ct_0001.nii.gz")
    demo = read_volume(DEMO_IMAGE)
    rng = np.random.default_rng(1)
    larger = rng.integers(-1000, 400, size=(36, 170, 175)).astype(np.int16)
    larger[4:34, 6:166, 11:171] = demo.array  # the demo as a block, its origin on the larger scan's lattice
    origin = np.asarray(demo.origin) - demo.direction @ (np.asarray(demo.spacing) * np.array([11, 6, 4]))
    write_volume(Volume(larger, demo.spacing, tuple(origin), demo.direction), tmp_path / "source_scan.nii.gz")
    scan(tmp_path, "other_series", 11)
    scan(tmp_path, "unrelated", 12)
    manifest = write_manifest(tmp_path, [
        {"case_id": "chest_ct_0001", "image": "chest_ct_0001.nii.gz"},
        {"case_id": "source_scan", "image": "source_scan.nii.gz", "patient": "p1"},
        {"case_id": "other_series", "image": "other_series.nii.gz", "patient": "p1"},
        {"case_id": "unrelated", "image": "unrelated.nii.gz", "patient": "p2"}])
    build_corpus(tmp_path / "corpus", [manifest], licence="any")
    assert list(corpus_rows(tmp_path / "corpus")) == ["unrelated"]
    excluded = excluded_rows(tmp_path / "corpus")
    assert excluded["chest_ct_0001"] == excluded["source_scan"] == DEMO_REASON
    assert excluded["other_series"].startswith("same patient as the demo case's source")


def test_bad_cases_are_left_out_with_the_reason(tmp_path: Path) -> None:
    image = scan(tmp_path, "good", 13)
    scan(tmp_path, "off_grid", 14)
    write_volume(Volume(np.zeros((3, 3, 3), np.uint8), image.spacing, image.origin, image.direction),
                 tmp_path / "small_mask.nii.gz")
    (tmp_path / "broken.nii.gz").write_bytes(b"not an image")
    manifest = write_manifest(tmp_path, [
        {"case_id": "good", "image": "good.nii.gz"},
        {"case_id": "missing", "image": "missing.nii.gz"},
        {"case_id": "broken", "image": "broken.nii.gz"},
        {"case_id": "off_grid", "image": "off_grid.nii.gz", "mask": "small_mask.nii.gz", "mask_labels": "1=tumor"}])
    build_corpus(tmp_path / "corpus", [manifest])
    assert list(corpus_rows(tmp_path / "corpus")) == ["good"]
    excluded = excluded_rows(tmp_path / "corpus")
    assert "file is missing" in excluded["missing"] and "grid differs" in excluded["off_grid"]
    assert excluded["broken"].startswith("cannot be used:")


def test_a_ct_not_in_hounsfield_units_is_left_out(tmp_path: Path) -> None:
    """8-bit or offset CT (no value below 0: no air, no fat) would teach an HU model wrong intensities."""
    hu = scan(tmp_path, "hu", 15)
    write_volume(hu.like((hu.array.astype(np.int32) + 1024).astype(np.uint16)), tmp_path / "offset.nii.gz")
    manifest = write_manifest(tmp_path, [{"case_id": "hu", "image": "hu.nii.gz"},
                                         {"case_id": "offset", "image": "offset.nii.gz"}])
    build_corpus(tmp_path / "corpus", [manifest])
    assert list(corpus_rows(tmp_path / "corpus")) == ["hu"]
    assert excluded_rows(tmp_path / "corpus")["offset"].startswith("CT intensities are not Hounsfield units")


def test_a_missing_or_unknown_source_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    for source in (tmp_path / "absent.csv", tmp_path / "notes.txt", tmp_path):
        assert main(["--progress", "none", "data", "corpus", "--out", str(tmp_path / "c"), str(source)]) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith("diffugts: error:") and "\n" not in error and str(source) in error


def test_extra_sequences_become_rows_and_other_extras_are_noted(tmp_path: Path) -> None:
    t1c = scan(tmp_path, "glioma", 15)
    scan(tmp_path, "glioma_flair", 16)
    scan(tmp_path, "glioma_wm_prob", 17)
    write_volume(t1c.like((t1c.array > 800).astype(np.uint8) * 4), tmp_path / "glioma_tumor.nii.gz")
    manifest = write_manifest(tmp_path, [{
        "case_id": "glioma", "image": "glioma.nii.gz", "mask": "glioma_tumor.nii.gz", "modality": "MR-T1c",
        "mask_labels": "1=core;2=edema;4=enhancing", "patient": "g1",
        "extra_images": "glioma_flair.nii.gz;glioma_wm_prob.nii.gz"}])
    build_corpus(tmp_path / "corpus", [manifest])
    rows = corpus_rows(tmp_path / "corpus")
    assert {k: (r["modality"], r["patient"], r["tumor"]) for k, r in rows.items()} == {
        "glioma": ("MR-T1c", "g1", "yes"), "glioma_flair": ("MR-FLAIR", "g1", "yes")}
    cases = {case.case_id: case for case in read_corpus(tmp_path / "corpus")}
    assert np.array_equal(cases["glioma_flair"].load_tumor().array, cases["glioma"].load_tumor().array)
    notes = json.loads((tmp_path / "corpus" / "corpus.json").read_text())["notes"]
    assert notes == ["glioma: extra image glioma_wm_prob.nii.gz skipped (not an MR sequence)"]


def test_plain_folders_need_their_licence_stated(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    scan(folder, "abdomen_ct", 18)
    scan(folder, "abdomen_ct_mask", 19, dtype="uint8")
    args = ["--progress", "none", "data", "corpus", "--out", str(tmp_path / "c"), str(folder)]
    assert main(args) == 0 and "unknown licence: (none given)" in capsys.readouterr().out
    assert main([*args[:-1], "--licence-of", f"{folder}=CC0 1.0", str(folder)]) == 0
    [row] = corpus_rows(tmp_path / "c").values()
    assert (row["case_id"], row["modality"], row["licence_class"], row["tumor"]) == (
        "abdomen_ct", "CT", "permissive", "unknown")


def test_rerun_reuses_files_and_a_foreign_folder_is_refused(tmp_path: Path, capsys) -> None:
    manifests = split_manifests(tmp_path)
    build_corpus(tmp_path / "corpus", manifests)
    images = sorted((tmp_path / "corpus" / "images").iterdir())
    stamps = [os.stat(path).st_mtime_ns for path in images]
    result = build_corpus(tmp_path / "corpus", manifests[:1])  # fewer sources: the others' files go
    assert result.summary["files"] == {"written": 0, "reused": 8, "removed": 8}
    assert [os.stat(path).st_mtime_ns for path in images if path.exists()] == stamps[:8]
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "thesis.txt").write_text("mine")
    assert main(["--progress", "none", "data", "corpus", "--out", str(tmp_path / "foreign"), str(manifests[0])]) == 2
    assert "is not empty and holds no corpus" in capsys.readouterr().err


@pytest.mark.slow
def test_the_shared_real_data_corpus(real_data_dir: Path, tmp_path: Path) -> None:
    data = real_data_dir.parent
    manifests = [data / "train" / "manifest.csv", real_data_dir / "manifest.csv",
                 real_data_dir / "unlabeled" / "manifest.csv"]
    if not all(path.is_file() for path in manifests):
        pytest.skip(f"the train and unlabeled manifests are not under {data}")
    build_corpus(tmp_path / "corpus", manifests)
    rows, excluded = corpus_rows(tmp_path / "corpus"), excluded_rows(tmp_path / "corpus")
    assert excluded["pyrad_lung1"] == DEMO_REASON
    assert excluded["niivue_chris_t1"].startswith("exact duplicate")
    assert excluded["healthy_totalseg_example_ct"] == "exact duplicate: same voxels and grid as ts_example_ct"
    assert {r["licence_class"] for r in rows.values()} == {"permissive"}
    assert rows["ts_example_ct"]["patient"] == rows["ts_example_ct_sm"]["patient"] == "ts_p1"
    assert rows["ts_example_ct"]["split"] == rows["ts_example_ct_sm"]["split"]
    assert rows["tcga_du_7294_flair"]["tumor_mask"] and rows["ts_example_ct"]["organs"]
    assert {r["split"] for r in rows.values() if r["modality"] == "CT"} == {"train", "validation"}


def test_public_dataset_layouts_bring_their_licences_and_organ_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    template = make_volume("LPS", "int16", (6, 7, 8), 20)

    def write(path: Path, array: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_volume(template.like(array), path)

    labels = np.zeros((6, 7, 8), np.uint8)
    labels[1:4, 2:5, 2:6], labels[2, 3, 3] = 1, 2  # organ with a lesion inside
    task = tmp_path / "Task03_Liver"
    write(task / "imagesTr" / "liver_0.nii.gz", rng.integers(-1000, 1000, (6, 7, 8)).astype(np.int16))
    write(task / "labelsTr" / "liver_0.nii.gz", labels)
    (task / "dataset.json").write_text(json.dumps({
        "name": "Liver", "modality": {"0": "CT"}, "labels": {"0": "background", "1": "liver", "2": "cancer"},
        "licence": "CC-BY-SA 4.0", "training": [{"image": "./imagesTr/liver_0.nii.gz",
                                                  "label": "./labelsTr/liver_0.nii.gz"}]}))
    kits = tmp_path / "kits23" / "dataset" / "case_00000"
    write(kits / "imaging.nii.gz", rng.integers(-1000, 1000, (6, 7, 8)).astype(np.int16))
    write(kits / "segmentation.nii.gz", labels)  # 1 kidney, 2 tumor
    brats = tmp_path / "brats" / "BraTS2021_00000"
    for token in ("t1", "t1ce", "t2", "flair"):
        write(brats / f"BraTS2021_00000_{token}.nii.gz", rng.integers(0, 500, (6, 7, 8)).astype(np.int16))
    write(brats / "BraTS2021_00000_seg.nii.gz", labels)  # 1 necrosis, 2 edema: no organ
    sources = [task, tmp_path / "kits23", tmp_path / "brats"]
    build_corpus(tmp_path / "any", sources, licence="any")
    rows = corpus_rows(tmp_path / "any")
    assert {k: (r["modality"], r["patient"], r["tumor"], r["licence_class"]) for k, r in rows.items()} == {
        "liver_0": ("CT", "liver_0", "yes", "permissive"), "case_00000": ("CT", "case_00000", "yes", "non-commercial"),
        **{f"BraTS2021_00000{suffix}": (modality, "BraTS2021_00000", "yes", "non-commercial")
           for suffix, modality in (("", "MR-FLAIR"), ("_t1", "MR-T1"), ("_t1c", "MR-T1c"), ("_t2", "MR-T2"))}}
    cases = {case.case_id: case for case in read_corpus(tmp_path / "any")}
    for case_id, organ in (("liver_0", "liver"), ("case_00000", "kidney")):  # the lesion lies in the organ
        assert set(np.unique(cases[case_id].load_organs().array)) == {0, LABEL_OF[organ]}
        assert int((cases[case_id].load_organs().array > 0).sum()) == int((labels > 0).sum())
    assert cases["BraTS2021_00000"].organs is None and rows["liver_0"]["body_region"] == "abdomen"
    build_corpus(tmp_path / "permissive", sources)
    assert list(corpus_rows(tmp_path / "permissive")) == ["liver_0"]
