"""``diffugts train backbone`` on a training corpus: which rows train (train split, the modality, permissive
licence, tumor-free regions), resuming after a stop or a kill to the same weights as an uninterrupted run,
checkpoints that load with ``weights_only``, the validation figure in HU, early stopping by validation (the
best VAE is kept, resumed and written) and patch augmentation drawn from the step's generator."""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from backbone_helpers import tiny_config, write_tiny_config
from safetensors.torch import load_file

from diffugts.backbone import train as train_module
from diffugts.backbone.train import train_backbone
from diffugts.backbone.train_data import TrainingVolume, augment, image_batch, load_sources, training_rows
from diffugts.backbone.train_validation import reconstruction_error
from diffugts.cli import main
from diffugts.errors import DiffuGTSError, InputError
from diffugts.io import Volume, write_volume

COLUMNS = ["case_id", "patient", "split", "image", "modality", "body_region", "tumor", "tumor_mask", "tumor_prompt",
           "organs", "source_dataset", "source_file", "licence", "licence_class", "sha256", "size_xyz", "spacing_xyz",
           "notes"]


def _ct(seed: int, shape=(24, 40, 40)) -> np.ndarray:
    """A small CT-like array [k, j, i]: air around an elliptic body of soft tissue with a bone."""
    rng = np.random.default_rng(seed)
    k, j, i = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    array = np.full(shape, -1000.0, np.float32)
    body = (j / 0.8) ** 2 + (i / 0.9) ** 2 < 1
    array[body] = 40.0 + rng.normal(0, 20, body.sum())
    array[body & (j**2 + (i - 0.3) ** 2 < 0.04)] = 700.0
    return array


def _row(corpus: Path, case_id: str, *, split="train", modality="CT", tumor="no", licence_class="permissive",
         with_mask: bool = True, seed: int = 0, offset: float = 0.0) -> dict[str, str]:
    image = Volume(_ct(seed) + offset, (3.0, 3.0, 3.0), (0.0, 0.0, 0.0), np.eye(3), modality=modality)
    write_volume(image, corpus / "images" / f"{case_id}.nii.gz")
    mask = ""
    if tumor == "yes" and with_mask:
        lesion = np.zeros(image.array.shape, np.uint8)
        lesion[10:14, 18:22, 18:22] = 1
        write_volume(image.like(lesion, modality="mask"), corpus / "masks" / f"{case_id}.nii.gz")
        mask = f"masks/{case_id}.nii.gz"
    licence = {"permissive": "CC BY 4.0", "non-commercial": "CC BY-NC 4.0"}.get(licence_class, "not stated")
    return {"case_id": case_id, "patient": case_id, "split": split, "image": f"images/{case_id}.nii.gz",
            "modality": modality, "body_region": "abdomen", "tumor": tumor, "tumor_mask": mask, "tumor_prompt": "",
            "organs": "", "source_dataset": "test", "source_file": f"{case_id}.nii.gz", "licence": licence,
            "licence_class": licence_class, "sha256": f"{seed:064d}", "size_xyz": "40x40x24", "spacing_xyz": "3x3x3",
            "notes": ""}


def _write_corpus(corpus: Path, rows: list[dict[str, str]]) -> Path:
    with (corpus / "corpus.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return corpus


@pytest.fixture
def corpus(tmp_path) -> Path:
    folder = tmp_path / "corpus"
    rows = [_row(folder, "healthy", seed=1), _row(folder, "tumor", tumor="yes", seed=2),
            _row(folder, "maybe_lesion", tumor="unknown", seed=3),
            _row(folder, "no_mask", tumor="yes", with_mask=False),
            _row(folder, "held_out", split="validation", seed=4), _row(folder, "mr", modality="MR-T1", seed=5),
            _row(folder, "not_hu", seed=8, offset=1024.0),  # a CT stored as unsigned values: no air below 0
            _row(folder, "nc_mr", modality="MR-T1", licence_class="non-commercial", seed=6)]
    return _write_corpus(folder, rows)


def _train_config(tmp_path: Path, **changes) -> Path:
    config = {"backbone": str(write_tiny_config(tmp_path)), "seed": 5, "threads": 1, "checkpoint_every": 2,
              "sources": [{"kind": "corpus", "split": "train", "modality": "CT", "mask_margin_vox": 1}],
              "validation": {"kind": "corpus", "split": "validation", "modality": "CT"},
              "vae": {"steps": 4, "batch": 1, "patch": [32, 32, 32], "lr": 1e-3, "lr_final": 1e-4,
                      "body_fraction": 0.5},
              "unet": {"steps": 3, "batch": 2, "patch": [32, 32, 32], "body_fraction": 0.5}, **changes}
    path = tmp_path / "train.json"
    path.write_text(json.dumps(config))
    return path


def test_corpus_source_takes_train_ct_permissive_tumor_free_regions_only(corpus):
    rows = training_rows(corpus)
    assert sorted(r.case_id for r in rows) == ["healthy", "not_hu", "tumor"]  # not unknown, unmasked, validation, MR
    said = []
    volumes = load_sources({"sources": [{"kind": "corpus", "split": "train", "modality": "CT", "mask_margin_vox": 1}]},
                           tiny_config(), corpus_dir=corpus, log=said.append)
    assert said == ["corpus case not_hu left out: not in Hounsfield units (no value below 0: no air or fat)"]
    by_name = {v.name: v for v in volumes}
    assert sorted(by_name) == ["healthy", "tumor"]
    assert by_name["healthy"].allowed.all()
    tumor = by_name["tumor"]
    # lesion voxels k 10:14, j/i 18:22 at 3 mm -> model grid 4 mm, plus a 1-voxel margin: all kept out
    x, y, z = (slice(int(18 * 3 / 4), int(np.ceil(22 * 3 / 4))), slice(int(18 * 3 / 4), int(np.ceil(22 * 3 / 4))),
               slice(int(10 * 3 / 4), int(np.ceil(14 * 3 / 4))))
    assert not tumor.allowed[x, y, z].any()
    assert 0.9 < tumor.allowed.mean() < 1.0
    assert tumor.provenance["licence"] == "CC BY 4.0" and tumor.provenance["sha256"].endswith("2")


def test_a_thin_volume_gives_thin_patches_not_copies_of_its_edge():
    thin = TrainingVolume("thin", np.random.default_rng(0).random((40, 40, 10), dtype=np.float32),
                          np.ones((40, 40, 10), bool), (2.0, 2.0, 2.0))
    batch = image_batch(np.random.default_rng(1), [thin], (32, 32, 32), 2, multiple=4)
    assert batch.shape == (2, 1, 32, 32, 8)
    assert len({float(batch[0, 0, :, :, z].sum()) for z in range(8)}) == 8  # no repeated slice


def test_a_non_permissive_training_row_is_refused(tmp_path, corpus, capsys):
    rows = list(csv.DictReader((corpus / "corpus.csv").open()))
    rows.append(_row(corpus, "nc_ct", licence_class="non-commercial", seed=7))
    _write_corpus(corpus, rows)
    with pytest.raises(InputError, match="nc_ct has a non-commercial licence"):
        training_rows(corpus)
    code = main(["--progress", "none", "train", "backbone", "--config", str(_train_config(tmp_path)),
                 "--corpus", str(corpus), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "permissively licensed scans only" in err and "Traceback" not in err
    assert "--licence permissive" in err
    assert not (tmp_path / "out" / "training.json").exists()


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return {**load_file(str(folder / "autoencoder.safetensors")),
            **{f"unet.{k}": v for k, v in load_file(str(folder / "unet.safetensors")).items()}}


AUGMENTED = {"vae": {"steps": 4, "batch": 1, "patch": [32, 32, 32], "lr": 1e-3, "lr_final": 1e-4, "body_fraction": 0.5,
                     "validate_every": 2, "augment": {"flip": True, "scale": 0.05, "shift": 20.0}},
             "unet": {"steps": 3, "batch": 2, "patch": [32, 32, 32], "body_fraction": 0.5, "augment": {"flip": True}}}


@pytest.mark.slow
def test_stopped_and_killed_runs_resume_to_the_uninterrupted_weights(tmp_path, corpus):
    config = _train_config(tmp_path, **AUGMENTED)
    quiet = {"log": lambda *_: None}
    whole = train_backbone(config, corpus_dir=corpus, out_dir=tmp_path / "whole", **quiet)
    assert whole["status"] == "complete" and whole["vae"]["steps"] == 4 and whole["unet"]["steps"] == 3
    assert whole["validation"]["cases"][0]["case_id"] == "held_out" and whole["validation"]["mae"] > 0

    # a session-sized limit: every invocation does one step (at least one, then the limit has passed)
    invocations = []
    while not invocations or invocations[-1]["status"] != "complete":
        invocations.append(train_backbone(config, corpus_dir=corpus, out_dir=tmp_path / "limited",
                                          time_limit_s=1e-6, **quiet))
        assert len(invocations) <= 8
        assert (tmp_path / "limited" / "unet_training_state.pt").exists() == ("unet" in invocations[-1])
    assert [r["vae"]["steps"] for r in invocations] == [1, 2, 3, 4, 4, 4, 4]
    assert [r.get("unet", {}).get("steps") for r in invocations] == [None, None, None, None, 1, 2, 3]

    # killed between checkpoints (every 2 steps): after step 3, so the rerun goes on from step 2
    def kill_at_third_step(stage, fraction):
        if stage == "train vae" and fraction == 0.75:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_backbone(config, corpus_dir=corpus, out_dir=tmp_path / "killed", progress=kill_at_third_step, **quiet)
    state = torch.load(tmp_path / "killed" / "vae_training_state.pt", weights_only=True)
    assert state["step"] == 2 and isinstance(state["torch_rng"], torch.Tensor)
    killed = train_backbone(config, corpus_dir=corpus, out_dir=tmp_path / "killed", **quiet)
    assert killed["status"] == "complete"

    reference = _weights(tmp_path / "whole")
    for folder in ("limited", "killed"):
        weights = _weights(tmp_path / folder)
        assert weights.keys() == reference.keys()
        assert all(torch.equal(weights[k], reference[k]) for k in reference), folder
        best_here, best_whole = (load_file(str(tmp_path / f / "vae_best.safetensors")) for f in (folder, "whole"))
        assert all(torch.equal(best_here[k], best_whole[k]) for k in best_whole), folder
    assert invocations[-1]["validation"]["mae"] == whole["validation"]["mae"]
    log = [json.loads(line) for line in (tmp_path / "limited" / "losses.jsonl").read_text().splitlines()]
    assert [e["stage"] for e in log].count("validation") == len(invocations)
    # validated at steps 2 and 4, once each although the run was cut into one-step invocations; the best kept
    validations = [e for e in log if "validation_mae" in e]
    assert [e["step"] for e in validations] == [2, 4]
    best = min(validations, key=lambda e: e["validation_mae"])
    for report in (whole, invocations[-1], killed):
        assert (report["vae"]["best_step"], report["vae"]["best_mae"]) == (best["step"], best["validation_mae"])
    best_weights = load_file(str(tmp_path / "whole" / "vae_best.safetensors"))
    assert all(torch.equal(v, reference[k]) for k, v in best_weights.items())  # the written VAE is the best
    assert whole["validation"]["mae"] == best["validation_mae"]  # the final figure is the best VAE's


def test_checkpoints_are_plain_tensors_and_another_config_is_refused(tmp_path, corpus, capsys):
    config = _train_config(tmp_path)
    report = train_backbone(config, corpus_dir=corpus, out_dir=tmp_path / "out", time_limit_s=1e-6, log=lambda *_: None)
    assert report["status"].startswith("stopped") and report["vae"]["steps"] == 1
    assert not (tmp_path / "out" / "autoencoder.safetensors").exists()  # final weights only when done
    state = torch.load(tmp_path / "out" / "vae_training_state.pt", weights_only=True)
    assert state["step"] == 1 and state["extra"]["seconds"] > 0
    assert load_file(str(tmp_path / "out" / "vae_checkpoint.safetensors"))

    assert main(["--progress", "none", "train", "backbone", "--config", str(config), "--corpus", str(corpus),
                 "--out", str(tmp_path / "out"), "--time-limit-s", "1"]) == 0
    assert json.loads((tmp_path / "out" / "training.json").read_text())["vae"]["steps"] >= 2
    # killed between writing the weights and the state: the two disagree, and resuming says so
    state_path = tmp_path / "out" / "vae_training_state.pt"
    state = torch.load(state_path, weights_only=True)
    torch.save({**state, "step": state["step"] - 1}, state_path)
    with pytest.raises(DiffuGTSError, match=r"checkpoint \(step \d\) and its training state \(step \d\) differ"):
        train_backbone(config, corpus_dir=corpus, out_dir=tmp_path / "out", log=lambda *_: None)
    torch.save(state, state_path)

    other = _train_config(tmp_path, seed=6)
    code = main(["--progress", "none", "train", "backbone", "--config", str(other), "--corpus", str(corpus),
                 "--out", str(tmp_path / "out")])
    assert code == 2 and "another configuration" in capsys.readouterr().err

    # anything that is not tensors and plain data (here an object of this module) must not be unpickled
    (tmp_path / "out" / "vae_training_state.pt").write_bytes(pickle.dumps({"step": _OffsetBackbone}, protocol=2))
    with pytest.raises(DiffuGTSError, match="refused to load the training state"):
        train_backbone(config, corpus_dir=corpus, out_dir=tmp_path / "out", log=lambda *_: None)


class _OffsetBackbone:
    """Encode is the identity, decode adds 0.01 (20 HU in a [-1000, 1000] window): a known error."""

    def __init__(self):
        self.config = tiny_config()
        self.device = torch.device("cpu")
        self.autoencoder = torch.nn.Identity()

    def encode(self, x):
        return x

    def decode(self, z):
        return z + 0.01


def test_validation_error_is_in_hu_inside_the_body():
    image = Volume(np.where(_ct(0) > -500, 40.0, -1000.0).astype(np.float32), (3.0, 3.0, 3.0), (0.0, 0.0, 0.0),
                   np.eye(3), modality="CT")
    figures = reconstruction_error(_OffsetBackbone(), image, modality="CT")
    assert figures["mae"] == pytest.approx(20.0, abs=0.05)
    body_ml = figures["body_voxels"] * 4.0**3 / 1000
    assert body_ml == pytest.approx((image.array > 0).sum() * 27 / 1000, rel=0.15)


def test_the_best_validated_vae_is_kept_trained_on_and_written_not_the_last(tmp_path, corpus, monkeypatch):
    figures = iter([30.0, 10.0, 20.0, 99.0])  # validations at steps 2, 4, 6, then the invocation's final one
    seen = []

    def scripted_validate(backbone, rows, *, modality):
        seen.append({k: v.clone() for k, v in backbone.autoencoder.state_dict().items()})
        return {"mae": next(figures), "cases": []}

    monkeypatch.setattr(train_module, "validate", scripted_validate)
    vae = {**AUGMENTED["vae"], "steps": 6}
    report = train_backbone(_train_config(tmp_path, vae=vae), corpus_dir=corpus, out_dir=tmp_path / "out",
                            log=lambda *_: None)
    assert report["status"] == "complete" and len(seen) == 4
    assert (report["vae"]["best_step"], report["vae"]["best_mae"]) == (4, 10.0)
    assert json.loads((tmp_path / "out" / "training.json").read_text())["vae"]["best_step"] == 4
    state = torch.load(tmp_path / "out" / "vae_training_state.pt", weights_only=True)
    assert state["step"] == 6 and (state["extra"]["best_step"], state["extra"]["best_mae"]) == (4, 10.0)
    written = load_file(str(tmp_path / "out" / "autoencoder.safetensors"))
    last = load_file(str(tmp_path / "out" / "vae_checkpoint.safetensors"))
    assert all(torch.equal(written[k], seen[1][k]) for k in written)  # step 4's weights, not step 6's
    assert not all(torch.equal(written[k], last[k]) for k in written)
    assert all(torch.equal(seen[3][k], seen[1][k]) for k in written)  # the UNet stage ran on the best VAE
    logged = [json.loads(line) for line in (tmp_path / "out" / "losses.jsonl").read_text().splitlines()]
    assert [(e["step"], e["validation_mae"], e["best_step"]) for e in logged if "validation_mae" in e] == [
        (2, 30.0, 2), (4, 10.0, 4), (6, 20.0, 4)]


def test_validate_every_without_a_validation_section_is_refused(tmp_path, corpus):
    config = json.loads(_train_config(tmp_path, **AUGMENTED).read_text())
    del config["validation"]
    (tmp_path / "train.json").write_text(json.dumps(config))
    with pytest.raises(DiffuGTSError, match="needs a 'validation' section"):
        train_backbone(tmp_path / "train.json", corpus_dir=corpus, out_dir=tmp_path / "out", log=lambda *_: None)


def test_augmentation_is_a_function_of_the_step_and_stays_in_its_bounds():
    x = torch.from_numpy(np.random.default_rng(0).random((2, 1, 8, 6, 4), dtype=np.float32))
    spec, window = {"flip": True, "scale": 0.05, "shift": 20.0}, (-1000.0, 1000.0)
    batches = [augment(np.random.default_rng([5, 0, step]), x, spec, window) for step in (3, 3, 4, 5, 6, 7)]
    assert torch.equal(batches[0], batches[1])
    assert not all(torch.equal(batches[0], b) for b in batches[2:])
    assert torch.equal(augment(np.random.default_rng(1), x, {}, window), x)  # nothing asked: unchanged
    hu = (x * 2000 - 1000).flatten()
    for b in batches:
        flipped = torch.sort((b * 2000 - 1000).flatten()).values  # flips move voxels, the scale/shift is monotone
        expected = torch.sort(hu).values
        ratio_and_offset = np.polyfit(expected.numpy(), flipped.numpy(), 1)
        assert 0.95 - 1e-4 <= ratio_and_offset[0] <= 1.05 + 1e-4 and abs(ratio_and_offset[1]) <= 20.0 + 1e-2
    flips = augment(np.random.default_rng(2), x, {"flip": True})
    assert flips.shape == x.shape and torch.equal(torch.sort(flips.flatten()).values, torch.sort(x.flatten()).values)
