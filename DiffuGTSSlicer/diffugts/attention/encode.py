"""One volume on the model grid with its latent and frozen features: computed once, reused per prompt."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..backbone import Conditioning
from ..backbone.grid import ModelGrid, to_model_grid
from ..backbone.sliding import encode_volume
from ..io import Volume
from ..progress import ProgressCallback, silent
from .features import frozen_features


@dataclass
class EncodedVolume:
    """Model-grid image [1,1,X,Y,Z], its latent, frozen features on the latent grid, and the way back."""

    image: torch.Tensor
    latent: torch.Tensor
    features: list[torch.Tensor]
    grid: ModelGrid
    conditioning: Conditioning
    mask: torch.Tensor | None = None  # a reference mask on the model grid, when one was given
    unet_features: list[torch.Tensor] = field(default_factory=list)  # the UNet's maps at their own sizes


def encode_for_attention(backbone, volume: Volume, *, timestep: int, modality: str | None = None,
                         mask: Volume | None = None, progress: ProgressCallback = silent) -> EncodedVolume:
    image, mask_tensor, grid = to_model_grid(volume, backbone.config, modality=modality, mask=mask)
    latent = encode_volume(backbone, image, progress=progress)
    conditioning = grid.conditioning()
    with torch.no_grad():
        unet = [f.float().cpu() for f in backbone.features(latent, timestep, conditioning)]
    features = frozen_features(backbone, image, unet, latent.shape[2:])
    progress("features", 1.0)
    return EncodedVolume(image, latent, features, grid, conditioning, mask_tensor, unet)
