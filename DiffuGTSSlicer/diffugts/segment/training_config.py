"""Refinement-head training settings: plain data, importable without torch (the CLI reads its defaults)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RefineTrainingConfig:
    split: str = "organs-a"
    backbone: str = "demo-ct"
    modality: str = "CT"
    cases_per_category: int = 4
    healthy_cases: int = 4
    size: int = 64  # phantom voxels per axis
    seeds: int = 1  # pseudo-healthy samples per case and prompt
    inpaint_steps: int = 5
    steps: int = 1200
    patch: int = 40  # model-grid voxels per side of the training crops
    learning_rate: float = 2e-3
    channels: tuple[int, ...] = (16, 32, 64)
    seed: int = 0
    checkpoint_every: int = 100
    categories: list[str] = field(default_factory=list)  # empty: the split's seen categories
    data: str = ""  # a dataset folder of real scans (e.g. 'diffugts data synth' output); empty: phantoms
    exclude_atlas_patients: list[str] = field(default_factory=list)  # atlases never used for these scans' priors
