"""The Backbone interface: a frozen latent diffusion model seen by the rest of the engine.

Tensors are ``[batch, channel, x, y, z]`` on the model grid: RAS-canonical voxel axes (i, j, k), at the
backbone's ``spacing_mm``, intensities normalized by the backbone's convention (CT: HU clipped to
[-1000, 1000] and scaled to [0, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from .config import BackboneConfig

BODY_REGIONS = ("head", "chest", "abdomen", "pelvis")  # MAISI v1's four body-region indices


@dataclass(frozen=True)
class Conditioning:
    """What the MAISI networks are told about the volume: spacing (mm), modality, body region."""

    spacing_mm: tuple[float, float, float] = (1.5, 1.5, 1.5)
    modality: str = "ct"
    top_region: str = "chest"
    bottom_region: str = "abdomen"


@runtime_checkable
class Backbone(Protocol):
    """Encode, decode, denoise and expose multi-scale features; never trained (all parameters frozen)."""

    config: BackboneConfig
    scheduler: object  # the MONAI scheduler the UNet was trained with
    scale_factor: float

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Image ``[B, 1, X, Y, Z]`` (normalized) -> scaled latent ``[B, C, X/f, Y/f, Z/f]``."""

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Scaled latent -> image."""

    def predict(self, z: torch.Tensor, t: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        """The UNet's output (noise for DDPM, velocity for rectified flow) at timestep ``t``."""

    def features(self, z: torch.Tensor, t: float | int, cond: Conditioning, *, seed: int = 0) -> list[torch.Tensor]:
        """Multi-scale UNet features of the latent noised to timestep ``t`` (coarse to fine)."""

    def encoder_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Multi-scale VAE encoder features of an image."""
