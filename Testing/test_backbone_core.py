"""Backbone interface, registry, configs, conditioning, weights loading (no pickle) and freezing."""

from __future__ import annotations

import json

import pytest
import torch

from backbone_helpers import random_networks, tiny_config, write_tiny_config
from diffugts.backbone import Backbone, Conditioning, LatentDiffusionBackbone, available, build_backbone, get_config
from diffugts.backbone.checkpoint import load_into, load_tensors, save_safetensors
from diffugts.errors import DiffuGTSError


def test_registry_lists_builtin_backbones_and_aliases():
    assert {"demo-ct", "maisi-ddpm-ct-v1", "maisi-rflow-v2"} <= set(available())
    assert get_config("maisi").name == "maisi-rflow-v2"
    assert get_config("maisi-v1").scheduler_type == "DDPMScheduler"
    assert get_config("demo").is_rectified_flow


def test_unknown_backbone_and_bad_configs_are_clear_errors(tmp_path):
    with pytest.raises(DiffuGTSError, match="unknown backbone 'nope'"):
        get_config("nope")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x"}))
    with pytest.raises(DiffuGTSError, match="lacks"):
        get_config(bad)
    data = tiny_config().to_dict()
    data["scheduler"]["type"] = "EulerScheduler"
    bad.write_text(json.dumps(data))
    with pytest.raises(DiffuGTSError, match="not supported"):
        get_config(bad)
    data = tiny_config().to_dict()
    data["patch_size"] = [30, 32, 32]
    bad.write_text(json.dumps(data))
    with pytest.raises(DiffuGTSError, match="multiples of 4"):
        get_config(bad)
    bad.write_text("{not json")
    with pytest.raises(DiffuGTSError, match="cannot be read"):
        get_config(bad)


def test_published_configs_keep_maisi_conventions():
    v1, v2 = get_config("maisi-ddpm-ct-v1"), get_config("maisi-rflow-v2")
    for config in (v1, v2):
        assert config.autoencoder["num_channels"] == [64, 128, 256]
        assert config.autoencoder["latent_channels"] == 4
        assert config.unet["num_channels"] == [64, 128, 256, 512]
        assert config.unet["attention_levels"] == [False, False, True, True]
        assert config.intensity["ct"] == {"kind": "clip", "window": [-1000.0, 1000.0]}
    assert v1.unet["include_top_region_index_input"] and not v2.unet["include_top_region_index_input"]
    assert v2.unet["num_class_embeds"] == 128 and v2.conditioning["modality_labels"]["ct"] == 1
    assert v2.conditioning["modality_labels"]["mri_t1"] == 9
    assert v2.scheduler_type == "RFlowScheduler" and v1.scheduler["schedule"] == "scaled_linear_beta"


def test_demo_backbone_is_the_maisi_classes_and_satisfies_the_protocol():
    backbone = build_backbone("demo", random_init=True)
    assert isinstance(backbone, Backbone)
    assert type(backbone.autoencoder).__name__ == "AutoencoderKlMaisi"
    assert type(backbone.unet).__name__ == "DiffusionModelUNetMaisi"
    x = torch.rand(1, 1, 32, 32, 32)
    z = backbone.encode(x)
    assert z.shape == (1, 4, 8, 8, 8)
    assert backbone.decode(z).shape == x.shape
    feats = backbone.features(z, 100, backbone.default_conditioning())
    assert len(feats) == 4 and feats[-1].shape[2:] == (8, 8, 8) and feats[0].shape[2:] == (2, 2, 2)
    again = backbone.features(z, 100, backbone.default_conditioning())
    assert all(torch.equal(a, b) for a, b in zip(feats, again))  # fixed noise seed: deterministic
    enc = backbone.encoder_features(x)
    assert [f.shape[2] for f in enc] == [32, 16, 8]


def test_conditioning_inputs_follow_maisi(tmp_path):
    v1 = build_backbone(write_tiny_config(tmp_path, "maisi_ddpm_ct_v1"), random_init=True)
    kwargs = v1.conditioning_kwargs(Conditioning((1.5, 1.5, 2.0), "ct", "chest", "abdomen"), batch=2)
    assert torch.equal(kwargs["spacing_tensor"], torch.tensor([[150.0, 150.0, 200.0]] * 2))
    assert kwargs["top_region_index_tensor"][0].tolist() == [0, 100, 0, 0]
    assert kwargs["bottom_region_index_tensor"][0].tolist() == [0, 0, 100, 0]
    assert "class_labels" not in kwargs
    with pytest.raises(DiffuGTSError, match="unknown body region"):
        v1.conditioning_kwargs(Conditioning(top_region="knee"), batch=1)
    v2 = build_backbone(write_tiny_config(tmp_path, "maisi_rflow_v2"), random_init=True)
    assert v2.conditioning_kwargs(Conditioning(modality="mri_t1"), 1)["class_labels"].tolist() == [9]
    assert v2.conditioning_kwargs(Conditioning(modality="ct"), 1)["class_labels"].tolist() == [1]
    with pytest.raises(DiffuGTSError, match="no modality class"):
        v2.conditioning_kwargs(Conditioning(modality="ultrasound"), 1)
    z = torch.randn(1, 4, 8, 8, 8)
    assert v2.predict(z, 500.0, Conditioning(modality="ct")).shape == z.shape
    # MONAI zero-initializes output convolutions (so conditioning has no effect at init): perturb them
    for network in (v1.unet, v2.unet):
        for parameter in network.parameters():
            if not parameter.any():
                parameter.data.normal_(0.0, 0.05, generator=torch.Generator().manual_seed(0))
    feats_ct = v2.features(z, 500.0, Conditioning(modality="ct"))
    feats_mr = v2.features(z, 500.0, Conditioning(modality="mri"))
    assert not torch.allclose(feats_ct[-1], feats_mr[-1])
    feats_v1 = v1.features(z, 500, Conditioning(top_region="head"))
    assert not torch.allclose(feats_v1[-1], v1.features(z, 500, Conditioning(top_region="pelvis"))[-1])


def test_backbone_is_frozen_and_gives_no_gradients():
    backbone = build_backbone("demo", random_init=True)
    assert not any(p.requires_grad for p in backbone.parameters())
    assert not backbone.autoencoder.training and not backbone.unet.training
    x = torch.rand(1, 1, 32, 32, 32)
    z = backbone.encode(x)
    feats = backbone.features(z, 50, backbone.default_conditioning())
    head = torch.nn.Conv3d(feats[-1].shape[1], 1, 1)  # a trainable head on frozen features
    loss = head(feats[-1]).mean() + backbone.decode(z).mean() * 0
    loss.backward()
    assert head.weight.grad is not None
    assert all(p.grad is None for p in backbone.parameters())
    assert not z.requires_grad and not any(f.requires_grad for f in feats)


def test_weights_round_trip_through_safetensors_and_weights_only_torch(tmp_path):
    config = tiny_config()
    ae, unet = random_networks(config, seed=1)
    save_safetensors(ae, tmp_path / "w" / "autoencoder_v1.pt.safetensors", {"scale_factor": "0.5"})
    # MAISI's own checkpoint layout: {"unet_state_dict": ..., "scale_factor": tensor}
    torch.save({"unet_state_dict": unet.state_dict(), "scale_factor": torch.tensor(0.75)},
               tmp_path / "w" / "diff_unet_3d_rflow-ct.pt")
    torch.save(ae.state_dict(), tmp_path / "w" / "autoencoder_v1.pt")
    path = write_tiny_config(tmp_path)
    backbone = build_backbone(path, weights=tmp_path / "w")
    assert backbone.scale_factor == pytest.approx(0.75)
    for a, b in zip(ae.state_dict().values(), backbone.autoencoder.state_dict().values()):
        assert torch.equal(a, b)
    tensors, meta = load_tensors(tmp_path / "w" / "autoencoder_v1.pt.safetensors")
    assert meta["scale_factor"] == "0.5" and set(tensors) == set(ae.state_dict())


class _Payload:
    def __reduce__(self):
        return (print, ("pickle code ran",))


def test_pickled_objects_are_refused(tmp_path, capsys):
    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": _Payload()}, evil)
    with pytest.raises(DiffuGTSError, match="refused to load"):
        load_tensors(evil)
    assert "pickle code ran" not in capsys.readouterr().out
    with pytest.raises(DiffuGTSError, match="unknown weights format"):
        load_tensors(tmp_path.joinpath("w.pkl").write_bytes(b"x") and tmp_path / "w.pkl")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not safetensors")
    with pytest.raises(DiffuGTSError, match="not a valid safetensors"):
        load_tensors(broken)


def test_mismatched_or_missing_weights_are_clear_errors(tmp_path):
    config = tiny_config()
    _, unet = random_networks(config)
    other = tiny_config("maisi_ddpm_ct_v1")
    _, unet_v1 = random_networks(other)
    save_safetensors(unet_v1, tmp_path / "v1.safetensors")
    with pytest.raises(DiffuGTSError, match="do not match the configured network"):
        load_into(unet, tmp_path / "v1.safetensors", "diffusion UNet")
    with pytest.raises(DiffuGTSError, match="weights missing"):
        build_backbone(write_tiny_config(tmp_path), weights=tmp_path)
    with pytest.raises(DiffuGTSError, match="weights download maisi-rflow-ct"):
        build_backbone("maisi-rflow-v2", weights=None)
    assert isinstance(build_backbone("demo", random_init=True), LatentDiffusionBackbone)
