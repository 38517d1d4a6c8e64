"""The frozen diffusion backbone: MAISI (MONAI) or the bundled demo; encode, decode, features, inpaint."""

from .base import BODY_REGIONS, Backbone, Conditioning
from .config import BackboneConfig
from .latent import LatentDiffusionBackbone, freeze
from .registry import ALIASES, DEFAULT, available, build_backbone, get_config, register, weight_files

__all__ = [
    "ALIASES",
    "BODY_REGIONS",
    "DEFAULT",
    "Backbone",
    "BackboneConfig",
    "Conditioning",
    "LatentDiffusionBackbone",
    "available",
    "build_backbone",
    "freeze",
    "get_config",
    "register",
    "weight_files",
]
