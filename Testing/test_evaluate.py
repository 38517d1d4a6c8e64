"""diffugts evaluate: the intensity-outlier baseline, the resumable run, its summary and the command line."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from diffugts.cli import main
from diffugts.cli.evaluate import METHODS as CLI_METHODS
from diffugts.data.phantom import make_phantom
from diffugts.data.phantom.tissues import label_legend
from diffugts.data.phantom.writer import write_phantom_set
from diffugts.data.readers import read_dataset
from diffugts.errors import DiffuGTSError
from diffugts.evaluation.baselines import BODY, ORGAN, body_mask, intensity_outliers, otsu_threshold
from diffugts.evaluation.metrics import segmentation_scores
from diffugts.evaluation.organs import organ_from_labels, organ_mask
from diffugts.evaluation.predictors import METHODS, OutlierPredictor
from diffugts.evaluation.run import CASES_CSV, COLUMNS, RunSettings, evaluate, read_rows, with_file_hashes
from diffugts.evaluation.summary import SUMMARY_MD, summarize


def outliers_of(category: str, seed: int):
    phantom = make_phantom(category, "CT", 40, seed)
    organ = organ_from_labels(phantom.labels, phantom.organ, label_legend())
    return phantom, intensity_outliers(phantom.image, organ)


def test_baseline_finds_a_high_contrast_tumor_in_its_organ():
    phantom, result = outliers_of("kidney cyst", 0)  # water-dense cyst in 170 HU kidney
    assert result.region == ORGAN
    assert result.mask.grid.matches(phantom.image.grid)
    assert segmentation_scores(result.mask, phantom.mask).dice > 0.6
    assert result.presence > 0.5


def test_baseline_gives_a_healthy_organ_low_presence():
    phantom, result = outliers_of("healthy", 1)
    assert phantom.organ == "kidney" and phantom.labels.array.max() < 100  # no lesion anywhere
    assert result.presence < 0.1
    assert result.mask.array.sum() * phantom.image.voxel_volume_ml < 1.0


def test_baseline_without_organ_searches_the_body_and_an_empty_organ_finds_nothing():
    phantom = make_phantom("kidney cyst", "CT", 40, 0)
    body = body_mask(phantom.image)
    assert not body[phantom.image.array < -900].any()  # air is outside the body
    assert intensity_outliers(phantom.image).region == BODY
    absent = intensity_outliers(phantom.image, phantom.image.like(np.zeros_like(phantom.mask.array)))
    assert absent.presence == 0.0 and not absent.mask.array.any()


def test_otsu_separates_two_intensity_classes():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(100, 10, 5000), rng.normal(500, 10, 5000)])
    threshold = otsu_threshold(values)
    assert (values[:5000] <= threshold).mean() > 0.99 and (values[5000:] > threshold).all()


def test_cli_names_the_engine_methods():
    assert CLI_METHODS == METHODS


@pytest.fixture(scope="module")
def phantom_manifest(tmp_path_factory):
    """Three small CT phantoms: two tumors and one healthy negative, with tissue label maps."""
    folder = tmp_path_factory.mktemp("phantoms")
    return write_phantom_set(folder, 3, ["kidney cyst", "liver tumor", "healthy"], ["CT"], 40, seed=3)


def settings_for(manifest, methods=("intensity-outlier",)) -> RunSettings:
    return RunSettings(dataset=str(manifest), layout="manifest", methods=methods)


def test_phantom_cases_get_organ_masks_and_real_cases_their_prompts_organ_prior(phantom_manifest, real_data_dir):
    case = read_dataset(phantom_manifest)[0]
    images, truth = case.load()
    organ = organ_mask(case, images["CT"])
    assert organ is not None and np.all(organ.array[truth.array > 0] == 1)  # the organ holds its tumor
    real = read_dataset(real_data_dir / "manifest.csv")[0]  # pyrad_lung1, "lung tumor"
    images, truth = real.load()
    lung = organ_mask(real, images["CT"])  # every method searches the same lung prior
    assert lung.grid == images["CT"].grid
    assert (lung.array[truth.array > 0] == 1).mean() > 0.95  # the lung prior holds the nodule


def test_run_writes_rows_summary_and_resumes(phantom_manifest, tmp_path):
    cases = read_dataset(phantom_manifest)
    settings = settings_for(phantom_manifest)
    first = evaluate(cases[:2], [OutlierPredictor()], tmp_path, settings)
    assert (first.evaluated, first.reused) == (2, 0)
    second = evaluate(cases, [OutlierPredictor()], tmp_path, settings)
    assert (second.evaluated, second.reused) == (1, 2)  # only the new case ran
    third = evaluate(cases, [OutlierPredictor()], tmp_path, settings)
    assert (third.evaluated, third.reused) == (0, 3)

    with (tmp_path / CASES_CSV).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 3
    assert [row["has_tumor"] for row in rows] == ["yes", "yes", "no"]
    assert {row["status"] for row in rows} == {"ok"} and {row["region"] for row in rows} == {"organ"}
    tumor = rows[0]
    assert float(tumor["dice"]) > 0.3 and float(tumor["true_ml"]) > 0 and float(tumor["seconds"]) >= 0
    assert rows[2]["dice"] == ""  # segmentation scores are for cases with a tumor only

    table = (tmp_path / SUMMARY_MD).read_text()
    assert "| Group | Method | Tumor cases | Healthy | Dice | NSD@2mm | HD95 mm |" in table
    overall = next(line for line in table.splitlines() if line.startswith("| all | intensity-outlier |"))
    assert overall.split(" | ")[2:4] == ["2", "1"]
    summary = {(row["group"], row["method"]): row for row in csv.DictReader((tmp_path / "summary.csv").open())}
    assert summary[("all", "intensity-outlier")]["presence_auroc"] != "n/a"


def test_run_with_other_settings_is_refused(phantom_manifest, tmp_path):
    cases = read_dataset(phantom_manifest)[:1]
    evaluate(cases, [OutlierPredictor()], tmp_path, settings_for(phantom_manifest))
    other = RunSettings(dataset=str(phantom_manifest), layout="manifest", methods=("intensity-outlier",),
                        quality="best")
    with pytest.raises(DiffuGTSError, match=r"other settings \(quality\)"):
        evaluate(cases, [OutlierPredictor()], tmp_path, other)
    assert len(read_rows(tmp_path / CASES_CSV)) == 1


def test_a_retrained_model_file_counts_as_other_settings(tmp_path):
    heads = tmp_path / "heads.safetensors"
    heads.write_bytes(b"first training")
    before = with_file_hashes({"attention_heads": str(heads), "backbone": "demo-ct"})
    heads.write_bytes(b"second training")
    after = with_file_hashes({"attention_heads": str(heads), "backbone": "demo-ct"})
    assert before["attention_heads"] == after["attention_heads"] and before != after
    assert set(before["file_sha256"]) == {"attention_heads"}


def test_auroc_is_na_with_one_class_and_nan_hd95_is_counted():
    base = dict(case_id="c", image="i", dataset="d", category="lung tumor", split="", modality="CT",
                prompt="lung tumor", method="m", status="ok", region="organ", seconds="1")
    rows = [dict(base, has_tumor="yes", dice="0.5", nsd="0.4", hd95_mm="3", presence="0.9", predicted_ml="2",
                 true_ml="2"),
            dict(base, has_tumor="yes", dice="0", nsd="0", hd95_mm="nan", presence="0.1", predicted_ml="0",
                 true_ml="2")]
    row = summarize(rows)[0]
    assert row["presence_auroc"] == "n/a"
    assert row["hd95_nan"] == "1" and float(row["hd95_mm_mean"]) == 3.0
    assert math.isclose(float(row["dice_mean"]), 0.25)


def test_methods_are_also_compared_on_the_cases_every_method_scored():
    base = dict(dataset="d", category="brain glioma", split="", prompt="brain glioma", has_tumor="yes", region="",
                dice="0.5", nsd="0.5", hd95_mm="2", presence="0.5", predicted_ml="1", true_ml="1", seconds="1")
    rows = [dict(base, case_id="ct", image="ct.nii.gz", modality="CT", method="a", status="ok"),
            dict(base, case_id="ct", image="ct.nii.gz", modality="CT", method="b", status="ok"),
            dict(base, case_id="mr", image="mr.nii.gz", modality="MR-T1", method="a", status="ok"),
            dict(base, case_id="mr", image="mr.nii.gz", modality="MR-T1", method="b",
                 status="skipped: modality not supported")]
    summary = {(row["group"], row["method"]): row for row in summarize(rows)}
    assert summary[("all", "a")]["tumor_cases"] == "2" and summary[("all", "b")]["skipped"] == "1"
    assert summary[("scored by every method", "a")]["tumor_cases"] == "1"
    assert summary[("scored by every method", "b")]["tumor_cases"] == "1"
    assert ("scored by every method", "a") not in {(r["group"], r["method"]) for r in summarize(rows[:2])}


def test_cli_one_line_error_for_a_missing_dataset(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("diffugts: error:") and "missing.csv" in error and "\n" not in error
    assert not (tmp_path / "out").exists()


def test_cli_phantom_split_labels_seen_and_unseen(tmp_path, capsys):
    out = tmp_path / "split"
    args = ["--progress", "none", "evaluate", "--phantom-split", "organs-a", "--n", "1", "--size", "32",
            "--methods", "intensity-outlier", "--out", str(out)]
    assert main(args) == 0
    rows = read_rows(out / CASES_CSV)
    assert {row["split"] for row in rows} == {"seen", "unseen"}
    assert {row["modality"] for row in rows} == {"CT"} and "brain glioma" not in {row["category"] for row in rows}
    assert sum(row["has_tumor"] == "no" for row in rows) == 2
    assert "| seen | intensity-outlier |" in (out / SUMMARY_MD).read_text()
    assert main(args) == 0 and "0 cases evaluated now" in capsys.readouterr().out  # phantoms and rows reused


def test_cli_split_labels_a_datasets_cases_seen_and_unseen(tmp_path, capsys):
    manifest = write_phantom_set(tmp_path / "set", 2, ["liver tumor", "pancreatic tumor"], ["CT"], 32, seed=3)
    out = tmp_path / "labelled"
    args = ["--progress", "none", "evaluate", str(manifest), "--split", "organs-a", "--methods", "intensity-outlier",
            "--out", str(out)]
    assert main(args) == 0
    assert {row["category"]: row["split"] for row in read_rows(out / CASES_CSV)} == \
        {"liver tumor": "seen", "pancreatic tumor": "unseen"}
    assert "| unseen | intensity-outlier |" in (out / SUMMARY_MD).read_text()
    assert main(["evaluate", "--phantom-split", "organs-a", "--split", "organs-b", "--out", str(tmp_path / "x")]) == 2
    assert "--split labels a DATASET" in capsys.readouterr().err


def test_segmenter_predictor_gives_both_methods_from_one_call_and_skips_mr(tmp_path):
    from diffugts.evaluation.predictors import ATTENTION_ONLY, DIFFUGTS, SegmenterPredictor
    from diffugts.segment import PRESETS, Segmenter

    segmenter = Segmenter.from_pretrained("demo-ct", device="cpu")
    ct = read_dataset(write_phantom_set(tmp_path / "ct", 1, ["kidney cyst"], ["CT"], 32, seed=1))
    mr = read_dataset(write_phantom_set(tmp_path / "mr", 1, ["kidney cyst"], ["MR-T2"], 32, seed=1))
    predictors = [SegmenterPredictor(segmenter, PRESETS["fast"]), OutlierPredictor()]
    outcome = evaluate(ct + mr, predictors, tmp_path / "out", settings_for(tmp_path, METHODS))
    rows = {(row["modality"], row["method"]): row for row in outcome.rows}
    assert len(rows) == 6 and segmenter.volumes.misses == 1  # one Segmenter call for both methods
    for method in (DIFFUGTS, ATTENTION_ONLY):
        row = rows[("CT", method)]
        assert row["status"] == "ok" and row["region"] == "organ"
        assert 0.0 <= float(row["presence"]) <= 1.0 and 0.0 <= float(row["dice"]) <= 1.0
        assert rows[("MR-T2", method)]["status"] == "skipped: modality not supported"
    assert float(rows[("CT", ATTENTION_ONLY)]["seconds"]) < float(rows[("CT", DIFFUGTS)]["seconds"])
    assert rows[("MR-T2", "intensity-outlier")]["status"] == "ok"
    assert "| Skipped / errors |" in (tmp_path / "out" / SUMMARY_MD).read_text()


def test_cli_evaluates_a_given_refinement_head_without_the_named_atlases(tmp_path):
    import json
    import shutil

    from diffugts.evaluation.run import SETTINGS_JSON
    from diffugts.segment.checkpoint import bundled_refine_path

    head = tmp_path / "my_head.safetensors"
    shutil.copyfile(bundled_refine_path("demo-ct"), head)
    weights = shutil.copytree(Path(bundled_refine_path("demo-ct")).parents[2] / "backbone" / "bundled" / "demo_ct",
                              tmp_path / "retrained-backbone")  # a backbone run's --out folder
    out = tmp_path / "run"
    assert main(["--progress", "none", "evaluate", "--phantom-split", "organs-a", "--n", "1", "--size", "32",
                 "--limit", "1", "--methods", "diffugts", "--quality", "fast", "--refine", str(head),
                 "--backbone", "demo-ct", "--weights", str(weights),
                 "--exclude-atlas-patient", "ts_p1", "--out", str(out)]) == 0
    models = json.loads((out / SETTINGS_JSON).read_text())["models"]
    assert models["refinement_head"] == str(head) and models["excluded_atlas_patients"] == ["ts_p1"]
    assert models["backbone"] == "demo-ct" and models["backbone_weights"]["source"] == str(weights)
    assert len(read_rows(out / CASES_CSV)) == 1
