"""``diffugts train backbone --config train_demo_mr.json``: demo-mr trains on the corpus's MR rows of every
sequence, each told to the UNet as its MAISI class, and its weights then load as demo-mr's."""

from __future__ import annotations

import json

from test_backbone_train_corpus import _row, _write_corpus

from diffugts.backbone import build_backbone
from diffugts.backbone.config import CONFIG_DIR
from diffugts.backbone.latent import LatentDiffusionBackbone
from diffugts.backbone.train import train_backbone


def test_demo_mr_trains_on_every_sequence_with_its_class_and_loads(tmp_path, monkeypatch):
    folder = tmp_path / "corpus"
    folder.joinpath("images").mkdir(parents=True)
    rows = [_row(folder, "t1", modality="MR-T1", seed=1, offset=1000.0),
            _row(folder, "flair", modality="MR-FLAIR", seed=2, offset=1000.0),
            _row(folder, "ct", modality="CT", seed=3),
            _row(folder, "held_out", split="validation", modality="MR", seed=4, offset=1000.0)]
    corpus = _write_corpus(folder, rows)
    shipped = json.loads((CONFIG_DIR / "train_demo_mr.json").read_text())
    assert shipped["backbone"] == "demo_mr.json" and shipped["sources"][0]["modality"] == "MR"
    config = {**shipped, "backbone": str(CONFIG_DIR / "demo_mr.json"), "checkpoint_every": 2,
              "vae": {**shipped["vae"], "steps": 2, "patch": [32, 32, 32], "validate_every": 2},
              "unet": {**shipped["unet"], "steps": 3, "batch": 2, "patch": [32, 32, 32]}}
    path = tmp_path / "train.json"
    path.write_text(json.dumps(config))
    told: list[str] = []
    original = LatentDiffusionBackbone.conditioning_kwargs

    def recording(self, cond, batch):
        told.append(cond.modality)
        return original(self, cond, batch)

    monkeypatch.setattr(LatentDiffusionBackbone, "conditioning_kwargs", recording)
    report = train_backbone(path, corpus_dir=corpus, out_dir=tmp_path / "out", log=lambda *_: None)
    assert report["status"] == "complete"
    assert sorted(d["case_id"] for d in report["data"]) == ["flair", "t1"]  # MR of any sequence, no CT
    assert told and set(told) <= {"MR-T1", "MR-FLAIR"}
    assert [c["case_id"] for c in report["validation"]["cases"]] == ["held_out"]
    backbone = build_backbone("demo-mr", weights=tmp_path / "out")
    assert backbone.config.name == "demo-mr" and backbone.weights_info["source"] == str(tmp_path / "out")

    # the heads and the refinement train on MR of every sequence, each case encoded as its own (not as MR-T1c)
    from diffugts.cli import main
    from diffugts.data.manifest import MANIFEST_COLUMNS
    from diffugts.data.phantom import make_phantom
    from diffugts.io import write_volume

    monkeypatch.setenv("DIFFUGTS_HOME", str(tmp_path / "home"))
    cases = tmp_path / "cases"
    cases.mkdir()
    lines = [",".join(MANIFEST_COLUMNS)]
    for name, category, modality in (("glioma_flair", "brain glioma", "MR-FLAIR"), ("healthy_t1", "healthy", "MR-T1")):
        phantom = make_phantom(category, modality, 32, seed=3)
        write_volume(phantom.image, cases / f"{name}.nii.gz")
        mask = ""
        if category != "healthy":
            write_volume(phantom.mask, cases / f"{name}_mask.nii.gz")
            mask = f"{name}_mask.nii.gz"
        prompt, labels = ("brain glioma", "1=brain glioma") if mask else ("", "")
        lines.append(",".join([name, f"{name}.nii.gz", mask, modality, "brain", prompt, labels] + [""] * 5))
    (cases / "manifest.csv").write_text("\n".join(lines) + "\n")
    told.clear()
    weights = str(tmp_path / "out")
    assert main(["--progress", "none", "train", "attention", "--backbone", "demo-mr", "--weights", weights,
                 "--real-data", str(cases / "manifest.csv"), "--steps", "2", "--cases-per-category", "1",
                 "--size", "32", "--out", str(tmp_path / "heads")]) == 0
    assert {"MR-FLAIR", "MR-T1"} <= set(told)  # the real cases as themselves, beside the T1c phantoms
    told.clear()
    assert main(["--progress", "none", "train", "refine", "--backbone", "demo-mr", "--weights", weights,
                 "--heads", str(tmp_path / "heads" / "attention_heads.safetensors"), "--data",
                 str(cases / "manifest.csv"), "--steps", "2", "--out", str(tmp_path / "refine")]) == 0
    assert {"MR-FLAIR", "MR-T1"} <= set(told) and "MR-T1c" not in told
