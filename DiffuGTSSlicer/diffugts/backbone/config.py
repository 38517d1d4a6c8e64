"""Backbone configuration: one JSON file names the networks, scheduler, conditioning and conventions.

The files under ``configs/`` are data, not code: network keyword arguments are passed to the MONAI
classes named here (an allow-list, never an arbitrary ``_target_``), so a config cannot run code.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DiffuGTSError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
SCHEDULER_TYPES = ("DDPMScheduler", "DDIMScheduler", "RFlowScheduler")
REQUIRED = ("name", "modalities", "spacing_mm", "intensity", "latent_downsample", "patch_size",
            "autoencoder", "unet", "scheduler", "conditioning", "weights")


@dataclass
class BackboneConfig:
    """A parsed, validated backbone config (see configs/*.json)."""

    name: str
    modalities: list[str]
    spacing_mm: tuple[float, float, float]
    intensity: dict[str, dict[str, Any]]
    latent_downsample: int
    patch_size: tuple[int, int, int]
    autoencoder: dict[str, Any]
    unet: dict[str, Any]
    scheduler: dict[str, Any]
    conditioning: dict[str, Any]
    weights: dict[str, Any]
    family: str = "custom"
    description: str = ""
    inference: dict[str, Any] = field(default_factory=dict)
    features: dict[str, Any] = field(default_factory=dict)
    other_modalities: dict[str, dict[str, str]] = field(default_factory=dict)  # family -> {backbone, package}
    path: str | None = None

    @property
    def scheduler_type(self) -> str:
        return str(self.scheduler["type"])

    @property
    def is_rectified_flow(self) -> bool:
        return self.scheduler_type == "RFlowScheduler"

    @property
    def latent_channels(self) -> int:
        return int(self.autoencoder["latent_channels"])

    def to_dict(self) -> dict[str, Any]:
        data = {key: copy.deepcopy(getattr(self, key)) for key in (*REQUIRED, "family", "description",
                                                                    "inference", "features")}
        if self.other_modalities:  # only when set: a config's dict (a training run's identity) stays as it was
            data["other_modalities"] = copy.deepcopy(self.other_modalities)
        data["spacing_mm"] = list(self.spacing_mm)
        data["patch_size"] = list(self.patch_size)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str | Path | None = None) -> BackboneConfig:
        where = None if path is None else str(path)
        if not isinstance(data, dict):
            raise DiffuGTSError("backbone config is not a JSON object", path=where)
        missing = [key for key in REQUIRED if key not in data]
        if missing:
            raise DiffuGTSError(f"backbone config lacks {', '.join(missing)}", path=where,
                                hint="See diffugts/backbone/configs/*.json for complete examples.")
        if data["scheduler"].get("type") not in SCHEDULER_TYPES:
            raise DiffuGTSError(f"scheduler type {data['scheduler'].get('type')!r} is not supported", path=where,
                                hint=f"Use one of {', '.join(SCHEDULER_TYPES)}.")
        spacing = tuple(float(s) for s in data["spacing_mm"])
        patch = tuple(int(p) for p in data["patch_size"])
        factor = int(data["latent_downsample"])
        if len(spacing) != 3 or min(spacing) <= 0:
            raise DiffuGTSError("spacing_mm must be three positive numbers", path=where)
        if len(patch) != 3 or any(p <= 0 or p % factor for p in patch):
            raise DiffuGTSError(f"patch_size must be three positive multiples of {factor}", path=where)
        for modality in data["modalities"]:
            if modality not in data["intensity"]:
                raise DiffuGTSError(f"no intensity convention for modality {modality!r}", path=where)
        known = {f for f in cls.__dataclass_fields__}
        extra = {key: value for key, value in data.items() if key in known and key not in REQUIRED}
        return cls(
            name=str(data["name"]), modalities=[str(m) for m in data["modalities"]], spacing_mm=spacing,
            intensity=dict(data["intensity"]), latent_downsample=factor, patch_size=patch,
            autoencoder=dict(data["autoencoder"]), unet=dict(data["unet"]), scheduler=dict(data["scheduler"]),
            conditioning=dict(data["conditioning"]), weights=dict(data["weights"]),
            **{k: v for k, v in extra.items() if k != "path"}, path=where,
        )

    @classmethod
    def from_file(cls, path: str | Path) -> BackboneConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DiffuGTSError("backbone config not found", path=path) from None
        except (OSError, ValueError) as error:
            raise DiffuGTSError(f"backbone config cannot be read ({error})", path=path) from None
        return cls.from_dict(data, path)
