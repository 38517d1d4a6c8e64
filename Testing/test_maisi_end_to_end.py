"""The MAISI path end to end, with tiny random MAISI-family networks saved the way NVIDIA's scripts save them:
heads trained for the backbone with `diffugts train attention` and `train refine`, then `diffugts segment` with
--backbone/--weights/--heads/--refine writes its results on the input's grid. No heads ship for MAISI, so this
is the path a MAISI user takes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from backbone_helpers import random_networks, tiny_config, write_tiny_config

from diffugts.data.phantom import make_phantom
from diffugts.io import read_grid, write_volume

SMALL = ["--steps", "3", "--cases-per-category", "1", "--size", "32"]


def _engine(*args: str, home) -> subprocess.CompletedProcess:
    env = {**os.environ, "DIFFUGTS_HOME": str(home), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "diffugts", "--progress", "none", *args], capture_output=True,
                          text=True, env=env, timeout=600)


@pytest.mark.slow
def test_heads_trained_for_a_maisi_backbone_segment_with_it(tmp_path):
    config = write_tiny_config(tmp_path)
    weights = tmp_path / "weights" / "models"
    weights.mkdir(parents=True)
    autoencoder, unet = random_networks(tiny_config(), seed=5)
    torch.save(autoencoder.state_dict(), weights / "autoencoder_v1.pt")
    torch.save({"unet_state_dict": unet.state_dict(), "scale_factor": torch.tensor(1.1)},
               weights / "diff_unet_3d_rflow-ct.pt")  # NVIDIA's inference scripts read this layout
    model = ["--backbone", str(config), "--weights", str(weights.parent)]

    trained = _engine("train", "attention", *model, *SMALL, "--out", str(tmp_path / "heads"), home=tmp_path)
    assert trained.returncode == 0, trained.stderr
    heads = tmp_path / "heads" / "attention_heads.safetensors"
    trained = _engine("train", "refine", *model, "--heads", str(heads), *SMALL, "--healthy-cases", "0",
                      "--out", str(tmp_path / "refine"), home=tmp_path)
    assert trained.returncode == 0, trained.stderr
    refine = tmp_path / "refine" / "refine_head.safetensors"

    image = write_volume(make_phantom("kidney tumor", "CT", (30, 28, 20), seed=2).image, tmp_path / "ct.nii.gz")
    out = tmp_path / "out"
    result = _engine("segment", str(image), "--prompt", "kidney tumor", "--fast", *model, "--heads", str(heads),
                     "--refine", str(refine), "--out", str(out), home=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["models"]["backbone"] == "tiny-maisi-rflow-v2"
    assert report["models"]["attention_heads"] == str(heads) and report["models"]["refinement_head"] == str(refine)
    assert read_grid(out / report["outputs"]["probability_1"]).matches(read_grid(image), tolerance=1e-4)
