"""Both published MAISI configurations, at full width, with the real MONAI classes: a forward pass on
a tiny input (the VAE on 32^3 voxels, the UNet on an 8^3 latent) with the conditioning each expects."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch

from diffugts.backbone import Conditioning, get_config
from diffugts.errors import DiffuGTSError
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


def _mr_volume():
    from diffugts.io import Volume

    rng = np.random.default_rng(0)
    array = np.zeros((32, 32, 32), np.float32)
    array[6:26, 6:26, 6:26] = 500.0
    array[12:18, 12:18, 12:18] = 900.0
    array += np.abs(rng.normal(0, 20, array.shape)).astype(np.float32)
    return Volume(array, (4.0, 4.0, 4.0), (0.0, 0.0, 0.0), np.eye(3), modality="MR-FLAIR", source="flair.nii.gz")


def test_maisi_mr_conditioning_tells_the_sequence_with_tiny_random_weights():
    """MAISI v2's MR networks (tiny, random) read an MR volume on the model grid, told its sequence as MAISI's
    modality class: FLAIR 11, T1c as T1 9 (MAISI has no contrast class), plain MR 8; features differ by class."""
    from backbone_helpers import random_networks, tiny_config

    from diffugts.attention.encode import encode_for_attention
    from diffugts.backbone.grid import to_model_grid

    config = tiny_config("maisi_rflow_v2_mr")
    backbone = LatentDiffusionBackbone(config, *random_networks(config))
    for network in (backbone.unet,):  # MONAI zero-initializes output convolutions: perturb them
        for parameter in network.parameters():
            if not parameter.any():
                parameter.data.normal_(0.0, 0.05, generator=torch.Generator().manual_seed(0))
    volume = _mr_volume()
    image, _, grid = to_model_grid(volume, config)
    cond = grid.conditioning()
    assert cond.modality == "MR-FLAIR" and 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    labels = {m: backbone.conditioning_kwargs(Conditioning(modality=m), 1)["class_labels"].item()
              for m in ("MR-FLAIR", "MR-T1c", "MR-T1", "MR-T2", "MR", "mri_adc")}
    assert labels == {"MR-FLAIR": 11, "MR-T1c": 9, "MR-T1": 9, "MR-T2": 10, "MR": 8, "mri_adc": 14}
    encoded = encode_for_attention(backbone, volume, timestep=100)
    assert encoded.conditioning.modality == "MR-FLAIR"
    z = encoded.latent
    flair = backbone.features(z, 100.0, Conditioning(grid.spacing_mm, "MR-FLAIR"))
    t1 = backbone.features(z, 100.0, Conditioning(grid.spacing_mm, "MR-T1"))
    assert all(torch.isfinite(f).all() for f in flair)
    assert not torch.allclose(flair[-1], t1[-1])
    with pytest.raises(DiffuGTSError, match="does not model CT.*maisi-rflow-v2 .weights package maisi-rflow-ct"):
        to_model_grid(volume, config, modality="CT")


def test_an_mr_to_the_ct_only_maisi_package_is_refused_naming_the_mr_package(tmp_path):
    from backbone_helpers import tiny_config

    from diffugts.backbone.grid import to_model_grid
    from diffugts.segment.model_choice import ModalityChoice, check_reads

    volume = _mr_volume()
    with pytest.raises(DiffuGTSError, match="does not model MR-FLAIR") as error:
        to_model_grid(volume, tiny_config("maisi_rflow_v2"))
    assert "--backbone maisi-rflow-v2-mr (weights package maisi-rflow-mr)" in str(error.value)
    with pytest.raises(DiffuGTSError, match="maisi-rflow-mr") as error:  # before any weights load
        check_reads("maisi", ModalityChoice("MR-T1", "given with --modality", given=True), volume)
    assert "--modality CT" in str(error.value)
    assert get_config("maisi-mr").weights["package"] == "maisi-rflow-mr"
