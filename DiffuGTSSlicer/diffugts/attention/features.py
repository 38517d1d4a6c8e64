"""The frozen features the heads read: VAE encoder and denoising-UNet maps, all on the latent grid."""

from __future__ import annotations

import torch
import torch.nn.functional as F



def on_latent_grid(maps: list[torch.Tensor], size: torch.Size) -> list[torch.Tensor]:
    """Finer maps are average-pooled, coarser ones trilinearly upsampled, to ``size``."""
    out = []
    for feature in maps:
        if feature.shape[2:] == size:
            out.append(feature)
        elif all(f >= s for f, s in zip(feature.shape[2:], size)):
            out.append(F.adaptive_avg_pool3d(feature, size))
        else:
            out.append(F.interpolate(feature, size=size, mode="trilinear", align_corners=False))
    return out


def frozen_features(backbone, image: torch.Tensor, unet_maps: list[torch.Tensor], size: torch.Size) -> list[torch.Tensor]:
    """Encoder features of ``image`` and the given UNet features of its latent, on the latent grid ``size``."""
    with torch.no_grad():
        maps = backbone.encoder_features(image) + unet_maps
    return [m.float().cpu() for m in on_latent_grid(maps, size)]
