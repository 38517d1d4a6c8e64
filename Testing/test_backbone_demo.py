"""The shipped demo backbone: weights load, it reconstructs CT, and inpainting a synthetic lesion in
held-out healthy CT (a slab never used in training) moves the region back toward the healthy tissue."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from diffugts.backbone import build_backbone
from diffugts.backbone.grid import to_model_grid
from diffugts.backbone.inpaint import inpaint
from diffugts.backbone.registry import BUNDLED_DIR
from diffugts.io import read_volume

CARD = BUNDLED_DIR / "demo_ct" / "MODEL_CARD.md"


def _weights_dir() -> Path | None:
    override = os.environ.get("DIFFUGTS_DEMO_WEIGHTS")  # to check a freshly trained candidate
    return Path(override) if override else None


@pytest.fixture(scope="module")
def demo():
    torch.set_num_threads(min(2, torch.get_num_threads()))
    return build_backbone("demo-ct", weights=_weights_dir())


def test_demo_weights_are_small_safetensors_with_a_model_card():
    folder = BUNDLED_DIR / "demo_ct"
    files = sorted(folder.glob("*.safetensors"))
    assert [f.name for f in files] == ["autoencoder.safetensors", "unet.safetensors"]
    assert sum(f.stat().st_size for f in files) < 50 * 1024**2
    card = CARD.read_text().lower()
    for needle in ("research demo, not for clinical use", "training data", "steps", "limits", "train backbone",
                   "apache-2.0", "bsd-3-clause"):
        assert needle in card


@pytest.fixture(scope="module")
def held_out_case(real_data_dir, demo):
    """A crop of the held-out top slab of the healthy CT, with a spherical hyperdense lesion inserted."""
    ct = read_volume(real_data_dir / "healthy" / "totalseg_example_ct.nii.gz")
    tensor, _, grid = to_model_grid(ct, demo.config, modality="CT")
    x, y, z = grid.resized
    slab = tensor[..., int(0.78 * z):int(0.78 * z) + 32]  # training held out z >= 0.75 (RAS: superior)
    assert slab.shape[-1] == 32
    cx, cy = x // 2, y // 2
    healthy = slab[..., cx - 32:cx + 32, cy - 32:cy + 32, :].clone()
    # a lesion centre inside soft tissue (0..150 HU), the whole 11^3 neighbourhood soft tissue
    soft = ((healthy > 0.5) & (healthy < 0.575)).float()
    inside = F.avg_pool3d(soft, 11, 1, 5) > 0.97
    inside[..., :8, :, :] = inside[..., -8:, :, :] = False
    inside[..., :, :8, :] = inside[..., :, -8:, :] = False
    inside[..., :, :, :8] = inside[..., :, :, -8:] = False
    candidates = inside[0, 0].nonzero()
    assert len(candidates), "no soft-tissue region for the lesion"
    centre = candidates[len(candidates) // 2]
    grid_idx = torch.stack(torch.meshgrid(*[torch.arange(n) for n in healthy.shape[2:]], indexing="ij"))
    distance = ((grid_idx - centre[:, None, None, None]) ** 2).sum(0).float().sqrt()
    lesion = (distance <= 4.0)[None, None]
    image = healthy.clone()
    image[lesion] = 0.62  # about 240 HU in soft tissue of 0..150 HU
    return healthy, image, lesion.float()


@pytest.mark.slow
def test_demo_inpainting_moves_the_lesion_toward_healthy_tissue(demo, held_out_case):
    healthy, image, lesion = held_out_case
    result = inpaint(demo, image, F.max_pool3d(lesion, 3, 1, 1), seeds=[0, 1])
    inside = lesion.bool()
    before = (image - healthy)[inside].abs().mean()
    pseudo = torch.stack(result.pseudo_healthy).mean(0)
    after = (pseudo - healthy)[inside].abs().mean()
    assert after <= 0.5 * before, f"MAD in lesion {after:.4f} vs input {before:.4f}"
    # away from the mask the pseudo-healthy image is the reconstruction (latents identical there)
    far = F.max_pool3d(lesion, 25, 1, 12) == 0
    assert (pseudo - result.reconstruction)[far].abs().mean() < 0.01
    # the reconstruction itself is close on held-out CT (VAE error, in [0, 1] units = 2000 HU), and
    # in soft tissue (0..150 HU)
    error = (result.reconstruction - healthy).abs()
    soft = (healthy > 0.5) & (healthy < 0.575) & ~F.max_pool3d(lesion, 3, 1, 1).bool()
    print(f"reconstruction MAD: all {error.mean():.4f}, soft tissue {error[soft].mean():.4f}; "
          f"lesion MAD {before:.4f} -> {after:.4f}")
    assert error.mean() < 0.06 and error[soft].mean() < 0.06  # ~100 HU: a demo-quality VAE (see the card)
