"""A frozen latent diffusion backbone built from MONAI's MAISI networks (MAISI itself or the demo)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import torch

from ..errors import DiffuGTSError
from ..io.sequence import modality_class
from .base import BODY_REGIONS, Conditioning
from .config import BackboneConfig
from .networks import build_sampler, build_scheduler, count_parameters


def freeze(module: torch.nn.Module) -> torch.nn.Module:
    """Evaluation mode and no parameter ever requires a gradient: the backbone is never trained here."""
    module.eval()
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


class LatentDiffusionBackbone:
    """VAE (AutoencoderKlMaisi) + denoising UNet (DiffusionModelUNetMaisi) + MONAI scheduler, all frozen."""

    def __init__(self, config: BackboneConfig, autoencoder: torch.nn.Module, unet: torch.nn.Module, *,
                 scale_factor: float = 1.0, device: torch.device | str = "cpu",
                 weights_info: dict[str, Any] | None = None, trainable: bool = False) -> None:
        self.config = config
        self.device = torch.device(device)
        self.autoencoder = autoencoder.to(self.device)
        self.unet = unet.to(self.device)
        if not trainable:
            freeze(self.autoencoder)
            freeze(self.unet)
        self.scale_factor = float(scale_factor)
        self.weights_info = weights_info or {}
        self.scheduler = build_scheduler(config)

    # ----------------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return (f"LatentDiffusionBackbone({self.config.name!r}, autoencoder={count_parameters(self.autoencoder):,} "
                f"params, unet={count_parameters(self.unet):,} params, scheduler={self.config.scheduler_type})")

    @property
    def factor(self) -> int:
        return self.config.latent_downsample

    def sampler(self, kind: str | None = None):
        """A fresh scheduler for denoising (DDIM/DDPM for DDPM models, rectified flow for flow models)."""
        return build_sampler(self.config, kind)

    def default_conditioning(self, modality: str = "ct") -> Conditioning:
        return Conditioning(spacing_mm=tuple(self.config.spacing_mm), modality=modality)

    def conditioning_kwargs(self, cond: Conditioning, batch: int) -> dict[str, torch.Tensor]:
        """The extra inputs the UNet expects (MAISI scales spacing and region one-hots by 100)."""
        spec = self.config.conditioning
        kwargs: dict[str, torch.Tensor] = {}
        if spec.get("spacing"):
            spacing = torch.tensor([list(cond.spacing_mm)], dtype=torch.float32, device=self.device)
            kwargs["spacing_tensor"] = spacing.repeat(batch, 1) * float(spec.get("spacing_scale", 1.0))
        if spec.get("body_region"):
            scale = float(spec.get("body_region_scale", 1.0))
            for key, region in (("top_region_index_tensor", cond.top_region),
                                ("bottom_region_index_tensor", cond.bottom_region)):
                if region not in BODY_REGIONS:
                    raise DiffuGTSError(f"unknown body region {region!r}", hint=f"Use one of {', '.join(BODY_REGIONS)}.")
                one_hot = torch.zeros(batch, len(BODY_REGIONS), device=self.device)
                one_hot[:, BODY_REGIONS.index(region)] = scale
                kwargs[key] = one_hot
        if spec.get("modality_class"):
            labels = spec.get("modality_labels", {"unknown": 0, "ct": 1})
            try:
                label = modality_class(cond.modality, labels)
            except DiffuGTSError as error:
                raise DiffuGTSError(f"backbone {self.config.name} has no modality class for {cond.modality!r}",
                                    hint=error.hint) from None
            kwargs["class_labels"] = torch.full((batch,), label, dtype=torch.long, device=self.device)
        return kwargs

    def _timesteps(self, t: float | int | torch.Tensor, batch: int) -> torch.Tensor:
        t = torch.as_tensor(t, device=self.device).reshape(-1)
        if t.numel() == 1:
            t = t.repeat(batch)
        return t.float() if self.config.is_rectified_flow else t.round().long()

    # ----------------------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic encoding (the posterior mean), times the latent scale factor."""
        with torch.no_grad():
            z_mu, _ = self.autoencoder.encode(x.to(self.device, torch.float32))
        return z_mu * self.scale_factor

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.autoencoder.decode(z.to(self.device, torch.float32) / self.scale_factor)

    def predict(self, z: torch.Tensor, t: float | int | torch.Tensor, cond: Conditioning) -> torch.Tensor:
        batch = z.shape[0]
        with torch.no_grad():
            return self.unet(z.to(self.device), self._timesteps(t, batch), **self.conditioning_kwargs(cond, batch))

    def add_noise(self, z: torch.Tensor, noise: torch.Tensor, t: float | int | torch.Tensor) -> torch.Tensor:
        return self.scheduler.add_noise(z, noise, self._timesteps(t, z.shape[0]))

    @contextmanager
    def _capture(self, modules: list[torch.nn.Module]):
        outputs: list[torch.Tensor | None] = [None] * len(modules)
        handles = []
        for index, module in enumerate(modules):
            def hook(_module, _inputs, output, index=index):
                outputs[index] = output[0] if isinstance(output, tuple) else output
            handles.append(module.register_forward_hook(hook))
        try:
            yield outputs
        finally:
            for handle in handles:
                handle.remove()

    def features(self, z: torch.Tensor, t: float | int, cond: Conditioning, *, seed: int = 0) -> list[torch.Tensor]:
        """UNet decoder features (middle block, then each up block: coarse to fine) of ``z`` noised to ``t``.

        The noise comes from ``seed``, so features are deterministic; ``t = 0`` uses the clean latent.
        """
        generator = torch.Generator(device="cpu").manual_seed(int(seed))
        noise = torch.randn(z.shape, generator=generator, dtype=torch.float32).to(self.device)
        noisy = self.add_noise(z.to(self.device), noise, t) if float(t) > 0 else z.to(self.device)
        modules = [self.unet.middle_block, *self.unet.up_blocks]
        with self._capture(modules) as outputs:
            self.predict(noisy, t, cond)
        return [o.detach() for o in outputs if o is not None]

    def encoder_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The VAE encoder's features at each resolution (the last block output per resolution)."""
        blocks = list(self.autoencoder.encoder.blocks)
        with self._capture(blocks) as outputs, torch.no_grad():
            self.autoencoder.encoder(x.to(self.device, torch.float32))
        by_size: dict[tuple[int, ...], torch.Tensor] = {}
        for output in outputs[:-2]:  # the last two blocks (norm, projection) only map to latent channels
            if output is not None:
                by_size[tuple(output.shape[2:])] = output.detach()
        return list(by_size.values())

    def parameters(self):
        yield from self.autoencoder.parameters()
        yield from self.unet.parameters()
