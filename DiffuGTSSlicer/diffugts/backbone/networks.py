"""Build the MONAI networks and scheduler a backbone config names.

Only these classes are built (an allow-list): MONAI's MAISI autoencoder and diffusion UNet, and
MONAI's DDPM / DDIM / rectified-flow schedulers. Device-dependent settings that do not change the
architecture or the weights are adapted here: flash attention and float16 group norm need CUDA, and
the MAISI convolution splitting is a GPU-memory trick (memory is bounded by sliding windows instead).
Faster kernels for the same layers are swapped in by .kernels.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import DiffuGTSError
from .config import BackboneConfig
from .kernels import fast_kernels

# Keyword arguments that only trade memory/speed on a given device; same parameters, same outputs.
_RUNTIME_KEYS_AE = ("norm_float16", "num_splits", "dim_split", "use_checkpointing", "use_flash_attention")
_RUNTIME_KEYS_UNET = ("use_flash_attention",)


def runtime_overrides(device: torch.device) -> tuple[dict[str, Any], dict[str, Any]]:
    """Autoencoder and UNet keyword overrides for ``device``."""
    if device.type == "cuda":
        return {}, {}
    return {"norm_float16": False, "num_splits": 1, "use_checkpointing": False}, {"use_flash_attention": False}


def build_autoencoder(config: BackboneConfig, device: torch.device | str = "cpu") -> torch.nn.Module:
    from monai.apps.generation.maisi.networks.autoencoderkl_maisi import AutoencoderKlMaisi

    kwargs = dict(config.autoencoder)
    kwargs.update(runtime_overrides(torch.device(device))[0])
    return fast_kernels(AutoencoderKlMaisi(**kwargs))


def build_unet(config: BackboneConfig, device: torch.device | str = "cpu") -> torch.nn.Module:
    from monai.apps.generation.maisi.networks.diffusion_model_unet_maisi import DiffusionModelUNetMaisi

    kwargs = dict(config.unet)
    kwargs.update(runtime_overrides(torch.device(device))[1])
    return fast_kernels(DiffusionModelUNetMaisi(**kwargs))


def build_scheduler(config: BackboneConfig):
    """The training/noising scheduler the config names (MONAI's class)."""
    from monai.networks import schedulers

    kwargs = dict(config.scheduler)
    kind = kwargs.pop("type")
    return getattr(schedulers, kind)(**kwargs)


def build_sampler(config: BackboneConfig, sampler: str | None = None):
    """The scheduler used to denoise at inference: DDIM (deterministic) or DDPM for DDPM-trained models,
    the rectified-flow scheduler for flow models."""
    from monai.networks import schedulers

    kwargs = dict(config.scheduler)
    kind = kwargs.pop("type")
    sampler = sampler or config.inference.get("sampler") or ("rflow" if kind == "RFlowScheduler" else "ddim")
    if kind == "RFlowScheduler":
        if sampler != "rflow":
            raise DiffuGTSError(f"backbone {config.name} is a rectified-flow model: it samples with 'rflow', "
                                f"not {sampler!r}", hint="Leave --sampler out, or pass --sampler rflow.")
        return schedulers.RFlowScheduler(**kwargs)
    if sampler == "ddim":
        kwargs.pop("variance_type", None)
        return schedulers.DDIMScheduler(**kwargs)
    if sampler == "ddpm":
        return schedulers.DDPMScheduler(**kwargs)
    raise DiffuGTSError(f"backbone {config.name} is DDPM-trained: the sampler must be 'ddim' or 'ddpm', "
                        f"not {sampler!r}", hint="Leave --sampler out (DDIM), or pass --sampler ddim.")


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
