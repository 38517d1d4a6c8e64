"""Trainable projection heads: frozen multi-scale features and text embeddings into one space.

Per voxel, the visual embedding is compared with the mean abnormal-prompt embedding and the mean
normal-prompt embedding; the attention logit is their scaled difference, so the map says how much
more a voxel looks like the abnormal description than like the normal anatomy (DiffuGTS, eq. 2-3).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class HeadsConfig:
    """Shapes the heads were built for; saved beside the weights."""

    feature_channels: tuple[int, ...]  # channels of each frozen feature map, in the order they are given
    text_dim: int
    embed_dim: int = 32
    text_encoder: str = "minilm"
    backbone: str = "demo-ct"
    timestep: int = 100

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> HeadsConfig:
        values = dict(values)
        values["feature_channels"] = tuple(values["feature_channels"])
        return cls(**values)


class AttentionHeads(nn.Module):
    """Visual head (per-scale 1x1x1 projections, fused on the finest grid) and text head (MLP)."""

    def __init__(self, config: HeadsConfig) -> None:
        super().__init__()
        self.config = config
        e = config.embed_dim
        self.visual = nn.ModuleList(nn.Conv3d(c, e, kernel_size=1) for c in config.feature_channels)
        self.fuse = nn.Sequential(nn.GELU(), nn.Conv3d(e, e, kernel_size=3, padding=1), nn.GELU(),
                                  nn.Conv3d(e, e, kernel_size=1))
        self.text = nn.Sequential(nn.Linear(config.text_dim, e), nn.GELU(), nn.Linear(e, e))
        self.log_scale = nn.Parameter(torch.tensor(2.3))  # exp(2.3) ~ 10: cosine differences become usable logits
        self.bias = nn.Parameter(torch.tensor(0.0))

    def visual_embedding(self, features: list[torch.Tensor]) -> torch.Tensor:
        """[B, E, X, Y, Z] unit vectors on the grid of the largest feature map."""
        if len(features) != len(self.visual):
            raise ValueError(f"heads expect {len(self.visual)} feature maps, got {len(features)}")
        size = max((f.shape[2:] for f in features), key=lambda s: s.numel())
        fused = sum(
            F.interpolate(project(f), size=size, mode="trilinear", align_corners=False)
            if f.shape[2:] != size else project(f)
            for project, f in zip(self.visual, features)
        )
        return F.normalize(self.fuse(fused), dim=1)

    def text_embedding(self, texts: torch.Tensor) -> torch.Tensor:
        """Mean of the projected prompt set, as a unit vector [E]."""
        return F.normalize(F.normalize(self.text(texts), dim=-1).mean(0), dim=0)

    def forward(self, features: list[torch.Tensor], abnormal: torch.Tensor, normal: torch.Tensor) -> torch.Tensor:
        """Attention logits [B, 1, X, Y, Z]: scaled (abnormal - normal) similarity."""
        visual = self.visual_embedding(features)
        contrast = self.text_embedding(abnormal) - self.text_embedding(normal)
        similarity = torch.einsum("bexyz,e->bxyz", visual, contrast)[:, None]
        return similarity * self.log_scale.exp() + self.bias
