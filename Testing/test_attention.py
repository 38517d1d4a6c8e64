"""Attention heads: geometry, frozen backbone, checkpoints, exact resume, and what training achieves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from diffugts.attention.checkpoint import load_heads, save_heads
from diffugts.attention.config import AttentionTrainingConfig
from diffugts.attention.encode import encode_for_attention
from diffugts.attention.heads import AttentionHeads, HeadsConfig
from diffugts.attention.infer import attention_map
from diffugts.attention.train import train_attention
from diffugts.backbone import build_backbone
from diffugts.data.phantom import make_phantom
from diffugts.errors import DiffuGTSError
from diffugts.text import CachedTextEncoder, build_text_encoder, parse_prompt


@pytest.fixture(scope="module")
def backbone():
    torch.manual_seed(0)
    return build_backbone("demo-ct", random_init=True)


@pytest.fixture(scope="module")
def text_encoder(tmp_path_factory):
    return CachedTextEncoder(build_text_encoder("minilm"), tmp_path_factory.mktemp("text-cache"))


@pytest.fixture(scope="module")
def oblique_case(backbone):
    phantom = next(p for seed in range(50) if not np.allclose(
        np.abs((p := make_phantom("kidney tumor", "CT", (40, 36, 24), seed=seed)).image.direction), np.eye(3)[
            :, np.argmax(np.abs(p.image.direction), axis=0)]))
    return phantom, encode_for_attention(backbone, phantom.image, timestep=100, modality="CT")


def _heads(encoded, text_encoder, seed=0):
    torch.manual_seed(seed)
    return AttentionHeads(HeadsConfig(tuple(f.shape[1] for f in encoded.features), text_encoder.dim, 16))


def test_attention_map_lies_on_the_oblique_input_grid(oblique_case, text_encoder):
    phantom, encoded = oblique_case
    volume = attention_map(_heads(encoded, text_encoder), text_encoder, encoded, parse_prompt("kidney tumor"))
    assert volume.grid.matches(phantom.image.grid, tolerance=0.0)
    assert volume.array.dtype == np.float32 and 0.0 <= volume.array.min() <= volume.array.max() <= 1.0


def test_a_second_prompt_reuses_the_text_cache(oblique_case, text_encoder):
    _, encoded = oblique_case
    heads = _heads(encoded, text_encoder)
    attention_map(heads, text_encoder, encoded, parse_prompt("renal mass"))
    hits = text_encoder.hits
    attention_map(heads, text_encoder, encoded, parse_prompt("renal mass"))
    assert text_encoder.hits == hits + len(parse_prompt("renal mass").abnormal) + 3


def test_gradients_reach_the_heads_and_never_the_backbone(backbone, oblique_case, text_encoder):
    from diffugts.attention.infer import attention_logits, prompt_embeddings

    _, encoded = oblique_case
    heads = _heads(encoded, text_encoder)
    abnormal, normal = prompt_embeddings(text_encoder, parse_prompt("kidney tumor"))
    attention_logits(heads, encoded, abnormal, normal).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in heads.parameters())
    assert all(not p.requires_grad and p.grad is None for p in backbone.parameters())
    assert all(not f.requires_grad for f in encoded.features)


def test_heads_checkpoint_round_trip_and_damaged_file(oblique_case, text_encoder, tmp_path):
    _, encoded = oblique_case
    heads = _heads(encoded, text_encoder, seed=3)
    path = save_heads(heads, tmp_path / "heads.safetensors", extra={"note": "test"})
    loaded, extra = load_heads(path)
    assert extra == {"note": "test"} and loaded.config == heads.config
    for (name, a), (_, b) in zip(heads.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DiffuGTSError, match="not a valid attention heads file"):
        load_heads(path)
    with pytest.raises(DiffuGTSError, match="attention heads file not found"):
        load_heads(tmp_path / "missing.safetensors")


def test_interrupted_training_resumes_to_the_same_weights(backbone, text_encoder, tmp_path):
    config = AttentionTrainingConfig(categories=["kidney tumor"], cases_per_category=1, size=32,
                                     steps=6, checkpoint_every=3, embed_dim=8)
    straight, _ = train_attention(backbone, text_encoder, config, tmp_path / "straight")
    interrupted = AttentionTrainingConfig(**{**config.__dict__, "steps": 3})
    train_attention(backbone, text_encoder, interrupted, tmp_path / "resumed")
    # the interrupted run's last checkpoint is at step 3; restart with the full configuration
    state = torch.load(tmp_path / "resumed" / "training_state.pt", weights_only=True)
    state["config"] = state["config"].replace('"steps": 3', '"steps": 6')
    torch.save(state, tmp_path / "resumed" / "training_state.pt")
    resumed, report = train_attention(backbone, text_encoder, config, tmp_path / "resumed")
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-6), name
    assert report["steps"] == 6


def test_resume_refuses_a_folder_of_another_configuration(backbone, text_encoder, tmp_path, monkeypatch):
    config = AttentionTrainingConfig(categories=["kidney tumor"], cases_per_category=1, size=32, steps=2,
                                     checkpoint_every=1, embed_dim=8)
    train_attention(backbone, text_encoder, config, tmp_path)
    other = AttentionTrainingConfig(**{**config.__dict__, "learning_rate": 0.1})

    def no_work_before_the_check(*args, **kwargs):
        raise AssertionError("training cases were prepared before the folder was checked")

    monkeypatch.setattr("diffugts.attention.train.prepare_cases", no_work_before_the_check)
    with pytest.raises(DiffuGTSError, match="another configuration"):
        train_attention(backbone, text_encoder, other, tmp_path)


def test_unknown_split_is_refused(backbone, text_encoder, tmp_path):
    with pytest.raises(DiffuGTSError, match="unknown zero-shot split 'nope'"):
        train_attention(backbone, text_encoder, AttentionTrainingConfig(split="nope"), tmp_path)
