"""Attention maps for text prompts, on the model grid and back on the input's exact grid."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..backbone.grid import from_model_grid
from ..io import Volume
from ..text import Prompt
from .encode import EncodedVolume
from .heads import AttentionHeads


def prompt_embeddings(text_encoder, prompt: Prompt) -> tuple[torch.Tensor, torch.Tensor]:
    """(abnormal [A, D], normal [N, D]) text embeddings of a prompt's description sets."""
    vectors = text_encoder.embed(list(prompt.abnormal) + list(prompt.normal))
    return vectors[: len(prompt.abnormal)], vectors[len(prompt.abnormal):]


def attention_logits(heads: AttentionHeads, encoded: EncodedVolume, abnormal: torch.Tensor,
                     normal: torch.Tensor) -> torch.Tensor:
    """Logits [1, 1, X, Y, Z] on the (padded) model grid, upsampled from the latent grid."""
    logits = heads(encoded.features, abnormal, normal)
    return F.interpolate(logits, size=encoded.image.shape[2:], mode="trilinear", align_corners=False)


def attention_map(heads: AttentionHeads, text_encoder, encoded: EncodedVolume, prompt: Prompt) -> Volume:
    """The attention map in [0, 1] for ``prompt``, as a float32 volume on the input's exact grid."""
    abnormal, normal = prompt_embeddings(text_encoder, prompt)
    with torch.no_grad():
        probability = torch.sigmoid(attention_logits(heads, encoded, abnormal, normal))
    volume = from_model_grid(probability, encoded.grid, intensities=False)
    return volume.like(volume.array.clip(0.0, 1.0).astype("float32"))
