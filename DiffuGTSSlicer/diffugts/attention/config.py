"""Attention training settings: plain data, importable without torch (the CLI reads its defaults)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AttentionTrainingConfig:
    split: str = "organs-a"
    backbone: str = "demo-ct"
    text_encoder: str = "minilm"
    modality: str = "CT"
    cases_per_category: int = 6
    size: int = 64  # phantom voxels per axis
    steps: int = 600
    learning_rate: float = 1e-2
    negative_fraction: float = 0.25
    embed_dim: int = 32
    timestep: int = 100
    seed: int = 0
    checkpoint_every: int = 50
    categories: list[str] = field(default_factory=list)  # empty: the split's seen categories
    # real cases besides the phantoms: a manifest CSV, MSD task, KiTS23 or BraTS folder ("" for none); only cases
    # of a seen category in the configured modality are used, and cases without a tumor as negatives
    real_data: str = ""
