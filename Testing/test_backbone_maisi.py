"""Both published MAISI configurations, at full width, with the real MONAI classes: a forward pass on
a tiny input (the VAE on 32^3 voxels, the UNet on an 8^3 latent) with the conditioning each expects."""

from __future__ import annotations

import gc

import pytest
import torch

from diffugts.backbone import Conditioning, get_config
from diffugts.backbone.latent import LatentDiffusionBackbone
from diffugts.backbone.networks import build_autoencoder, build_unet, count_parameters


@pytest.mark.slow
@pytest.mark.parametrize("name,unet_params,cond", [
    ("maisi-ddpm-ct-v1", 169_370_884, Conditioning((1.5, 1.5, 1.5), "ct", "chest", "abdomen")),
    ("maisi-rflow-v2", 180_500_868, Conditioning((1.0, 1.0, 2.5), "mri_t1")),
])
def test_published_maisi_networks_forward_on_a_tiny_input(name, unet_params, cond):
    torch.manual_seed(0)
    config = get_config(name)
    autoencoder, unet = build_autoencoder(config), build_unet(config)
    assert type(autoencoder).__name__ == "AutoencoderKlMaisi"
    assert type(unet).__name__ == "DiffusionModelUNetMaisi"
    assert count_parameters(autoencoder) == 20_944_897  # the published VAE
    assert count_parameters(unet) == unet_params
    backbone = LatentDiffusionBackbone(config, autoencoder, unet)
    x = torch.rand(1, 1, 32, 32, 32)
    z = backbone.encode(x)
    assert z.shape == (1, 4, 8, 8, 8)
    assert backbone.decode(z).shape == x.shape
    t = 500.0 if config.is_rectified_flow else 500
    out = backbone.predict(z, t, cond)
    assert out.shape == z.shape and torch.isfinite(out).all()
    feats = backbone.features(z, t, cond)
    assert [f.shape[1] for f in feats] == [512, 512, 256, 128, 64]
    del backbone, autoencoder, unet
    gc.collect()
