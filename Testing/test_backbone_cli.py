"""``diffugts inpaint`` end to end: outputs on the input's exact grid (oblique, anisotropic), report, errors;
``diffugts train backbone`` runs a few reproducible steps."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from backbone_helpers import random_networks, tiny_config, write_tiny_config
from diffugts.backbone.checkpoint import save_safetensors
from diffugts.cli import main
from diffugts.io import Volume, read_volume, write_volume
from geometry_cases import DIRECTIONS


@pytest.fixture
def tiny_backbone(tmp_path):
    """A tiny MAISI-v2-layout config and random weights in a local folder (--weights DIR)."""
    config = tiny_config()
    ae, unet = random_networks(config, seed=5)
    weights = tmp_path / "weights"
    save_safetensors(ae, weights / "autoencoder_v1.safetensors")
    save_safetensors(unet, weights / "diff_unet_3d_rflow-ct.safetensors", {"scale_factor": "1.0"})
    path = write_tiny_config(tmp_path, weights={"package": None, "autoencoder": "autoencoder_v1.safetensors",
                                                "unet": "diff_unet_3d_rflow-ct.safetensors"})
    return path, weights


def _oblique_case(tmp_path, direction="oblique"):
    rng = np.random.default_rng(0)
    array = (rng.normal(40, 30, size=(14, 40, 50))).astype(np.int16)  # [k, j, i]
    array[:, :, :5] = -1000
    spacing = (float(np.float32(0.9)), float(np.float32(1.7)), float(np.float32(4.5)))
    origin = (float(np.float32(-80.25)), float(np.float32(33.5)), float(np.float32(-410.0)))
    image = Volume(array, spacing, origin, DIRECTIONS[direction], modality="CT")
    mask = np.zeros(array.shape, np.uint8)
    mask[5:9, 15:25, 20:30] = 1
    image_path = write_volume(image, tmp_path / "ct.nii.gz")
    mask_path = write_volume(image.like(mask), tmp_path / "mask.nii.gz")
    return image_path, mask_path


@pytest.mark.parametrize("direction", ["oblique", "sagittal"])
def test_inpaint_cli_writes_outputs_on_the_input_grid(tmp_path, tiny_backbone, direction):
    config, weights = tiny_backbone
    image_path, mask_path = _oblique_case(tmp_path, direction)
    out = tmp_path / "out"
    code = main(["--progress", "none", "inpaint", str(image_path), "--mask", str(mask_path), "--out", str(out),
                 "--backbone", str(config), "--weights", str(weights), "--seeds", "0", "1", "--steps", "3"])
    assert code == 0
    source = read_volume(image_path)
    for name in ("pseudo_healthy", "pseudo_healthy_seed0", "pseudo_healthy_seed1", "reconstruction"):
        result = read_volume(out / f"{name}.nii.gz")
        assert result.array.shape == source.array.shape
        assert result.grid.matches(source.grid, tolerance=1e-5), name
        assert np.isfinite(result.array).all() and -1001 <= result.array.min() and result.array.max() <= 1001
    report = json.loads((out / "report.json").read_text())
    assert report["seeds"] == [0, 1] and report["backbone"] == "tiny-maisi-rflow-v2"
    assert report["model_grid"]["spacing_mm"][0] == pytest.approx(4.0, rel=0.2)
    a, b = (read_volume(out / f"pseudo_healthy_seed{s}.nii.gz").array for s in (0, 1))
    assert not np.array_equal(a, b)


def test_inpaint_cli_bad_inputs_are_one_line_errors(tmp_path, tiny_backbone, capsys):
    config, weights = tiny_backbone
    image_path, mask_path = _oblique_case(tmp_path)
    source = read_volume(image_path)
    empty = write_volume(source.like(np.zeros(source.array.shape, np.uint8)), tmp_path / "empty.nii.gz")
    shifted = Volume(np.ones(source.array.shape, np.uint8), source.spacing,
                     tuple(o + 5 for o in source.origin), source.direction)
    other = write_volume(shifted, tmp_path / "shifted.nii.gz")
    base = ["inpaint", str(image_path), "--out", str(tmp_path / "o"), "--backbone", str(config),
            "--weights", str(weights)]
    assert main([*base, "--mask", str(empty)]) == 2
    assert "mask is empty" in capsys.readouterr().err
    assert main([*base, "--mask", str(other)]) == 2
    assert "not on the image's grid" in capsys.readouterr().err
    ct_only = write_tiny_config(tmp_path, modalities=["ct"], intensity={"ct": {"kind": "clip", "window": [-1000, 1000]}},
                                weights={"autoencoder": "autoencoder_v1.safetensors",
                                         "unet": "diff_unet_3d_rflow-ct.safetensors"})
    assert main([*base, "--mask", str(mask_path), "--modality", "MR", "--backbone", str(ct_only)]) == 2
    assert "does not model MR images" in capsys.readouterr().err
    assert main(["inpaint", str(image_path), "--mask", str(mask_path), "--out", str(tmp_path / "o"),
                 "--backbone", "maisi-rflow-v2"]) == 2
    assert "weights download maisi-rflow-ct" in capsys.readouterr().err
    assert main([*base, "--mask", str(mask_path), "--out", str(image_path)]) == 2
    assert "--out must be a folder" in capsys.readouterr().err


def test_train_backbone_cli_is_reproducible(tmp_path, real_data_dir):
    data = tmp_path / "data"
    data.mkdir()
    # a small crop of the healthy CT keeps this fast; the bundled config trains on the full volumes
    ct = read_volume(real_data_dir / "healthy" / "totalseg_example_ct.nii.gz")
    crop = Volume(ct.array[40:72, 30:62, 40:72].copy(), ct.spacing, ct.origin, ct.direction, modality="CT")
    write_volume(crop, data / "crop.nii.gz")
    config = {"backbone": str(write_tiny_config(tmp_path)), "seed": 3, "threads": 1,
              "sources": [{"kind": "volume", "path": "crop.nii.gz"}],
              "vae": {"steps": 2, "batch": 1, "patch": [32, 32, 32]},
              "unet": {"steps": 2, "batch": 2, "patch": [32, 32, 32]}}
    path = tmp_path / "train.json"
    path.write_text(json.dumps(config))
    runs = []
    for name in ("a", "b"):
        assert main(["--progress", "none", "train", "backbone", "--config", str(path), "--data", str(data),
                     "--out", str(tmp_path / name)]) == 0
        runs.append(json.loads((tmp_path / name / "training.json").read_text()))
    assert runs[0]["vae"]["steps"] == 2 and runs[0]["unet"]["steps"] == 2
    assert runs[0]["vae"]["final_l1"] == runs[1]["vae"]["final_l1"]
    assert runs[0]["unet"]["final_mse"] == runs[1]["unet"]["final_mse"]
    from safetensors.torch import load_file

    a, b = (load_file(str(tmp_path / n / "autoencoder.safetensors")) for n in ("a", "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_inpaint_cli_refuses_wrong_sampler_and_start(tmp_path, tiny_backbone, capsys):
    config, weights = tiny_backbone
    image_path, mask_path = _oblique_case(tmp_path)
    base = ["inpaint", str(image_path), "--mask", str(mask_path), "--out", str(tmp_path / "o"),
            "--backbone", str(config), "--weights", str(weights)]
    assert main([*base, "--sampler", "ddim"]) == 2
    assert "rectified-flow model" in capsys.readouterr().err
    assert main([*base, "--start", "1.5"]) == 2
    assert "start fraction must be in (0, 1]" in capsys.readouterr().err
