"""The refinement head: a small 3D convolutional network that turns the residuals into the final mask.

Its inputs, per voxel of the model grid (DiffuGTS, section 3.4):
  0. the image;
  1. the pixel residual: VAE reconstruction of the input minus the pseudo-healthy decode (the VAE's
     own error cancels, what the inpainting removed remains);
  2. the input residual: the image minus the pseudo-healthy decode. Beyond the paper: with a weak VAE
     (the demo backbone's), what it cannot reconstruct is itself a sign of anomaly, and the
     inpainting alone removes little (measured on phantoms: 0.003 mean pixel residual in tumors);
  3. the attention map of the prompt;
  4. the feature residual: 1 - cosine similarity of the frozen UNet features of the input latent and
     of the pseudo-healthy latent, averaged over scales and brought to the image grid;
  5. the prompt's organ prior (:mod:`.organ_context`): where the organ the words name lies;
  6. the image's robust z-score against that organ's own intensities. Beyond the paper too: what stands out
     in its organ is the cue a reader uses first, and the residuals say whether the backbone agrees.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .organ_context import OrganContext

INPUT_CHANNELS = ("image", "pixel residual", "input residual", "attention", "feature residual", "organ prior",
                  "organ z-score")
RESIDUAL_INPUTS = INPUT_CHANNELS[:5]  # what heads saved before the organ channels existed read


@dataclass(frozen=True)
class RefineConfig:
    """Shapes the head was built for; saved beside the weights."""

    channels: tuple[int, ...] = (16, 32, 64)
    backbone: str = "demo-ct"
    threshold: float = 0.5  # probability above which a voxel is in the mask (chosen after training)
    presence_threshold: float = 0.0  # presence below this reports "not found" (calibrated on validation scans)
    inputs: tuple[str, ...] = INPUT_CHANNELS  # the channels the head reads, by name, in order

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> RefineConfig:
        values = dict(values)
        values["channels"] = tuple(values["channels"])
        values["inputs"] = tuple(values.get("inputs", RESIDUAL_INPUTS))  # a file without the key predates them
        return cls(**values)


class RefineHead(nn.Module):
    """MONAI's residual UNet at a small size: the input channels -> one logit per voxel."""

    def __init__(self, config: RefineConfig) -> None:
        super().__init__()
        from monai.networks.nets import UNet

        from ..backbone.kernels import fast_kernels

        self.config = config
        self.net = fast_kernels(UNet(spatial_dims=3, in_channels=len(config.inputs), out_channels=1,
                                     channels=config.channels, strides=(2,) * (len(config.channels) - 1),
                                     num_res_units=1, norm="instance"))

    @property
    def size_multiple(self) -> int:
        return 2 ** (len(self.config.channels) - 1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.net(inputs)


def feature_residual(features_input: list[torch.Tensor], features_pseudo: list[torch.Tensor],
                     size: torch.Size) -> torch.Tensor:
    """[1, 1, *size]: mean over scales of 1 - cosine(input, pseudo-healthy) features, upsampled to ``size``."""
    maps = []
    for a, b in zip(features_input, features_pseudo):
        distance = 1.0 - F.cosine_similarity(a.float(), b.float(), dim=1, eps=1e-6)[:, None]
        maps.append(F.interpolate(distance, size=size, mode="trilinear", align_corners=False))
    return torch.stack(maps).mean(0)


def refine_inputs(image: torch.Tensor, reconstruction: torch.Tensor, pseudo_healthy: torch.Tensor,
                  attention: torch.Tensor, feature_distance: torch.Tensor, organ: OrganContext,
                  inputs: tuple[str, ...] = INPUT_CHANNELS) -> torch.Tensor:
    """The head's input stack [1, len(inputs), X, Y, Z]: the named channels of ``INPUT_CHANNELS``, in order."""
    maps = dict(zip(INPUT_CHANNELS, (image, reconstruction - pseudo_healthy, image - pseudo_healthy, attention,
                                     feature_distance, organ.probability, organ.zscore)))
    return torch.cat([maps[name] for name in inputs], dim=1).float()


def refine_logits(head: RefineHead, inputs: torch.Tensor, patch_size: tuple[int, int, int]) -> torch.Tensor:
    """Logits [1, 1, X, Y, Z]; volumes larger than ``patch_size`` go through MONAI's sliding window (the window
    clipped to the volume: no zero padding in the instance norms)."""
    from ..backbone.sliding import run_windows

    return run_windows(head, inputs, patch_size, device=next(head.parameters()).device, stage="refine")
