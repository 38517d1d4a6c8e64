"""Latent inpainting (blended latents) for DDIM, DDPM and rectified flow; sliding windows; features."""

from __future__ import annotations

import pytest
import torch

from backbone_helpers import write_tiny_config
from diffugts.backbone import build_backbone
from diffugts.backbone.inpaint import inpaint, inpaint_latent, latent_mask
from diffugts.backbone.sliding import decode_latent, encode_volume, run_windows, window


def _tiny(tmp_path, name, seed=0):
    torch.manual_seed(seed)
    backbone = build_backbone(write_tiny_config(tmp_path, name), random_init=True)
    # MONAI zero-initializes output convolutions: give the untrained UNet a non-trivial output
    for parameter in backbone.unet.parameters():
        if not parameter.any():
            parameter.data.normal_(0.0, 0.05, generator=torch.Generator().manual_seed(seed))
    return backbone


def _inputs(size=(32, 32, 32)):
    generator = torch.Generator().manual_seed(1)
    image = torch.rand((1, 1, *size), generator=generator)
    mask = torch.zeros_like(image)
    mask[..., 8:20, 8:20, 8:20] = 1
    return image, mask


@pytest.mark.parametrize("name,sampler", [("maisi_ddpm_ct_v1", "ddim"), ("maisi_ddpm_ct_v1", "ddpm"),
                                          ("maisi_rflow_v2", None)])
def test_inpainting_keeps_the_unmasked_latent_and_is_deterministic_per_seed(tmp_path, name, sampler):
    backbone = _tiny(tmp_path, name)
    image, mask = _inputs()
    z = backbone.encode(image)
    lmask = latent_mask(mask, backbone.factor, dilate=0)
    assert lmask.shape[2:] == z.shape[2:] and lmask.sum() == 27  # voxels 8..19 -> latent 2..4
    cond = backbone.default_conditioning("ct")
    kwargs = dict(sampler=sampler, num_steps=4, start_fraction=0.6)
    a = inpaint_latent(backbone, z, lmask, cond, seed=7, **kwargs)
    b = inpaint_latent(backbone, z, lmask, cond, seed=7, **kwargs)
    c = inpaint_latent(backbone, z, lmask, cond, seed=8, **kwargs)
    keep = ~lmask.bool().expand_as(z)
    assert torch.equal(a, b)  # same seed, same result
    assert torch.equal(a[keep], z[keep])  # the known region ends exactly at the input latent
    assert (a[~keep] - z[~keep]).abs().mean() > 1e-3  # the masked region was regenerated
    assert (a[~keep] - c[~keep]).abs().mean() > 1e-4  # another seed, another sample


def test_ddpm_takes_the_steps_asked_for(tmp_path, monkeypatch):
    """--sampler ddpm --steps 10 from 70% noise once ran 701 UNet passes (MONAI's step goes t -> t-1 only)."""
    backbone = _tiny(tmp_path, "maisi_ddpm_ct_v1")
    image, mask = _inputs()
    z = backbone.encode(image)
    lmask = latent_mask(mask, backbone.factor, dilate=0)
    calls = []
    predict = backbone.predict
    monkeypatch.setattr(backbone, "predict", lambda x, t, cond: calls.append(t) or predict(x, t, cond))
    out = inpaint_latent(backbone, z, lmask, backbone.default_conditioning("ct"), sampler="ddpm", num_steps=10,
                         start_fraction=0.7)
    assert calls == [666.0, 555.0, 444.0, 333.0, 222.0, 111.0, 0.0]  # 10 steps over 999..0, from 700 down
    assert torch.isfinite(out).all() and (out - z).abs().mean() > 1e-3


def test_a_one_timestep_ddpm_step_is_monais_step():
    from monai.networks.schedulers import DDPMScheduler

    from diffugts.backbone.ddpm_step import ddpm_step

    scheduler = DDPMScheduler(num_train_timesteps=1000, schedule="scaled_linear_beta", beta_start=0.0015,
                              beta_end=0.0195, clip_sample=False)
    x, output = torch.randn(1, 4, 6, 6, 6), torch.randn(1, 4, 6, 6, 6)
    for t in (999, 500, 1, 0):
        expected, _ = scheduler.step(output, t, x, generator=torch.Generator().manual_seed(t))
        ours = ddpm_step(scheduler, output, t, t - 1, x, generator=torch.Generator().manual_seed(t))
        torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-5)


def test_inpaint_returns_reconstruction_seeds_and_frozen_features(tmp_path):
    backbone = _tiny(tmp_path, "maisi_rflow_v2")
    image, mask = _inputs()
    result = inpaint(backbone, image, mask, seeds=[0, 1], num_steps=3, with_features=True)
    assert result.seeds == [0, 1] and len(result.pseudo_healthy) == 2 and len(result.features_pseudo) == 2
    assert torch.allclose(result.reconstruction, backbone.decode(backbone.encode(image)), atol=1e-5)
    assert result.pseudo_healthy[0].shape == image.shape
    assert [f.shape for f in result.features_input] == [f.shape for f in result.features_pseudo[1]]
    assert not any(f.requires_grad for f in result.features_input)
    assert all(p.grad is None and not p.requires_grad for p in backbone.parameters())
    outside = latent_mask(mask, backbone.factor, 1).bool().expand_as(result.latent) == 0
    assert torch.equal(result.pseudo_latents[0][outside], result.latent[outside])


def test_latent_mask_is_conservative_and_dilated():
    mask = torch.zeros(1, 1, 32, 32, 32)
    mask[0, 0, 5, 5, 5] = 1  # one voxel marks its whole latent voxel
    m0 = latent_mask(mask, 4, dilate=0)
    assert m0.sum() == 1 and m0[0, 0, 1, 1, 1] == 1
    assert latent_mask(mask, 4, dilate=1).sum() == 27


def test_sliding_window_encode_decode_matches_shapes_and_blends(tmp_path):
    backbone = _tiny(tmp_path, "maisi_rflow_v2")
    image = torch.rand(1, 1, 64, 48, 32)  # larger than the 32^3 patch along two axes
    z = encode_volume(backbone, image, overlap=0.5)
    assert z.shape == (1, 4, 16, 12, 8)
    whole = backbone.encode(image)
    # away from patch borders the blended patches agree with encoding the whole volume at once
    assert (z - whole).abs().mean() < 0.5 * whole.abs().mean()
    calls = []
    x = decode_latent(backbone, z, overlap=0.25, progress=lambda stage, f: calls.append((stage, f)))
    assert x.shape == image.shape and calls[-1] == ("decode", 1.0) and len(calls) > 1


def test_a_volume_within_one_window_goes_whole_and_a_larger_one_is_never_padded():
    assert window((28, 28, 40), (32, 32, 32)) == [28, 28, 40]  # fewer voxels than one window
    assert window((20, 48, 60), (32, 32, 32)) == [20, 32, 32]
    assert window((48, 48, 60), (32, 32, 32)) == [32, 32, 32]
    seen = []

    def doubled(patch: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(patch.shape[2:]))
        return 2 * patch

    x = torch.rand(1, 2, 20, 48, 60)
    out = run_windows(doubled, x, (32, 32, 32), device=torch.device("cpu"))
    assert len(seen) > 1 and set(seen) == {(20, 32, 32)}  # no axis of a window larger than the volume's
    assert torch.allclose(out, 2 * x, atol=1e-5)
    seen.clear()
    assert torch.equal(run_windows(doubled, x[:, :, :, :30, :40], (32, 32, 32), device=torch.device("cpu")),
                       2 * x[:, :, :, :30, :40]) and seen == [(20, 30, 40)]


def test_model_grid_round_trip_is_exact_and_keeps_small_masks():
    import numpy as np

    from diffugts.backbone import get_config
    from diffugts.backbone.grid import from_model_grid, to_model_grid
    from diffugts.io import Volume
    from geometry_cases import DIRECTIONS

    k, j, i = np.meshgrid(*[np.arange(n) for n in (20, 48, 64)], indexing="ij")
    array = (40 + 300 * np.sin(i / 9.0) * np.cos(j / 11.0) + 5 * k).astype(np.int16)  # smooth, in HU
    volume = Volume(array, (0.6, 0.8, 3.0), (-20.5, 11.25, 300.0), DIRECTIONS["oblique"], modality="CT")
    mask = np.zeros(array.shape, np.uint8)
    mask[10, 20, 30] = 1  # one 0.6 x 0.8 x 3 mm voxel
    config = get_config("demo-ct")
    image, mask_tensor, grid = to_model_grid(volume, config, mask=volume.like(mask))
    assert mask_tensor.sum() >= 1  # a small lesion is never lost by resampling to 2 mm
    assert all(p % 16 == 0 for p in image.shape[2:])
    back = from_model_grid(image, grid)
    assert back.array.shape == array.shape and back.grid.matches(volume.grid, tolerance=1e-12)
    assert np.abs(back.array - array).mean() < 60  # smooth content survives 2 mm resampling (HU)
