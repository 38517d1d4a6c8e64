"""Faster CPU kernels for the same layers (backbone.kernels): same values as the MAISI layers."""

from __future__ import annotations

import pytest
import torch

from diffugts.backbone import build_backbone
from diffugts.backbone.kernels import OneDnnConv3d
from diffugts.backbone.networks import runtime_overrides


def _maisi_networks(config):
    """The MAISI classes exactly as MONAI builds them (MAISI group norms, torch's Conv3d)."""
    from monai.apps.generation.maisi.networks.autoencoderkl_maisi import AutoencoderKlMaisi
    from monai.apps.generation.maisi.networks.diffusion_model_unet_maisi import DiffusionModelUNetMaisi

    ae_overrides, unet_overrides = runtime_overrides(torch.device("cpu"))
    return (AutoencoderKlMaisi(**{**config.autoencoder, **ae_overrides}).eval(),
            DiffusionModelUNetMaisi(**{**config.unet, **unet_overrides}).eval())


def test_fast_kernels_compute_what_the_maisi_layers_compute():
    from monai.apps.generation.maisi.networks.autoencoderkl_maisi import MaisiGroupNorm3D

    backbone = build_backbone("demo-ct")  # the shipped weights: outputs that are not trivially zero
    autoencoder, unet = backbone.autoencoder, backbone.unet
    maisi_autoencoder, maisi_unet = _maisi_networks(backbone.config)
    maisi_autoencoder.load_state_dict(autoencoder.state_dict())
    maisi_unet.load_state_dict(unet.state_dict())
    assert any(isinstance(m, MaisiGroupNorm3D) for m in maisi_autoencoder.modules())
    for fast in (autoencoder, unet):
        assert not any(isinstance(m, MaisiGroupNorm3D) or type(m) is torch.nn.Conv3d for m in fast.modules())
    assert sum(isinstance(m, OneDnnConv3d) for m in unet.modules()) > 10
    generator = torch.Generator().manual_seed(1)
    z = torch.randn(1, 4, 8, 8, 12, generator=generator)
    x = torch.rand(1, 1, 32, 32, 48, generator=generator)
    t = torch.tensor([300.0])
    extra = backbone.conditioning_kwargs(backbone.default_conditioning(), 1)
    with torch.no_grad():
        decoded, reference = autoencoder.decode(z), maisi_autoencoder.decode(z)
        assert torch.allclose(decoded, reference, atol=1e-5) and reference.abs().max() > 0.1
        encoded, reference = autoencoder.encode(x)[0], maisi_autoencoder.encode(x)[0]
        assert torch.allclose(encoded, reference, atol=1e-5) and reference.abs().max() > 0.1
        predicted, reference = unet(z, t, **extra), maisi_unet(z, t, **extra)
        assert torch.allclose(predicted, reference, atol=1e-4) and reference.abs().max() > 0.1


def test_onednn_convolution_falls_back_to_torch_when_training():
    conv = OneDnnConv3d(2, 3, 3, padding=1)
    x = torch.rand(1, 2, 5, 6, 7, requires_grad=True)
    conv(x).sum().backward()  # with gradients: torch's Conv3d, differentiable
    assert x.grad is not None and conv.weight.grad is not None
    with torch.no_grad():
        assert torch.allclose(conv(x), torch.nn.functional.conv3d(x, conv.weight, conv.bias, padding=1), atol=1e-6)


@pytest.mark.parametrize("missing", ["onednn", "entry_point"])
def test_a_torch_build_without_onednn_gets_the_public_convolution_with_the_same_values(monkeypatch, missing):
    """macOS and Windows CPU builds may lack oneDNN; torch.mkldnn_convolution is private and may go."""
    conv = OneDnnConv3d(2, 3, 3, padding=1, stride=(1, 2, 1)).eval()
    x = torch.rand(1, 2, 9, 10, 11)
    with torch.no_grad():
        fast = conv(x)
        if missing == "onednn":
            monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
            monkeypatch.setattr(torch, "mkldnn_convolution", _never)  # what it does in a build without oneDNN
        else:
            monkeypatch.delattr(torch, "mkldnn_convolution")
        fallback = conv(x)
    assert torch.allclose(fallback, fast, atol=1e-5)
    assert torch.allclose(fallback, torch.nn.functional.conv3d(x, conv.weight, conv.bias, padding=1, stride=(1, 2, 1)))


def _never(*_args, **_kwargs):
    raise RuntimeError("oneDNN is not available in this build")


def test_pointwise_convolution_is_a_matrix_product_with_the_same_values():
    x = torch.rand(1, 16, 5, 6, 7)
    for bias in (True, False):
        conv = OneDnnConv3d(16, 8, 1, bias=bias).eval()
        assert conv.pointwise and not OneDnnConv3d(16, 8, 3, padding=1).pointwise
        with torch.no_grad():
            expected = torch.nn.functional.conv3d(x, conv.weight, conv.bias)
            assert torch.allclose(conv(x), expected, atol=1e-5)
            assert torch.allclose(conv(torch.cat([x, x])), torch.cat([expected, expected]), atol=1e-5)  # batch of 2


def test_refinement_head_runs_the_fast_kernels_with_monai_unet_values():
    from monai.networks.nets import UNet

    from diffugts.segment.checkpoint import bundled_refine_path, load_refine

    head, _ = load_refine(bundled_refine_path("demo-ct"))
    inputs = len(head.config.inputs)  # the channels this head file reads
    assert sum(isinstance(m, OneDnnConv3d) for m in head.modules()) >= 4
    plain = UNet(spatial_dims=3, in_channels=inputs, out_channels=1, channels=head.config.channels,
                 strides=(2,) * (len(head.config.channels) - 1), num_res_units=1, norm="instance").eval()
    plain.load_state_dict(head.net.state_dict())
    x = torch.rand(1, inputs, 16, 16, 24, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = plain(x)
        assert torch.allclose(head.eval()(x), reference, atol=1e-5) and reference.abs().max() > 0.01
