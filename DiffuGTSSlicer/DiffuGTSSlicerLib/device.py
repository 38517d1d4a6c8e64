"""What the computer offers (torch, CUDA, GPUs, found by a separate process) and a rough time estimate."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .i18n import _

PROBE_SCRIPT = Path(__file__).with_name("probe_device.py")
# Seconds per million input voxels on 2 CPU cores with the demo models (benchmarks/README.md, "End to
# end", read + segment + write: fast 1.0-1.6, best 2.1-4.0; balanced is interpolated, not measured), plus
# loading the models.
CPU_SECONDS_PER_MEGAVOXEL = {"fast": 1.3, "balanced": 2.0, "best": 2.8}
MODEL_LOADING_SECONDS = 6.0
GPU_SPEEDUP = 25.0


@dataclass
class DeviceInfo:
    torch: str | None = None
    cuda: str | None = None
    gpus: list[dict] = field(default_factory=list)

    @property
    def has_gpu(self) -> bool:
        return bool(self.gpus)

    def describe(self) -> str:
        """One line for the panel: torch version, CUDA and each GPU's memory."""
        if not self.torch:
            return _("PyTorch is not installed (see Setup).")
        if not self.gpus:
            return _("PyTorch {torch}, no CUDA GPU: runs on the CPU.").format(torch=self.torch)
        gpus = ", ".join(f"{g['name']} ({g['memory_gb']:g} GB)" for g in self.gpus)
        return _("PyTorch {torch}, CUDA {cuda}: {gpus}").format(torch=self.torch, cuda=self.cuda, gpus=gpus)


def probe_command(python: str) -> list[str]:
    return [python, str(PROBE_SCRIPT)]


def parse_probe(lines: Sequence[str]) -> DeviceInfo:
    """The DeviceInfo from the probe's output (its last JSON line); an empty one if there is none."""
    for line in reversed(lines):
        try:
            payload = json.loads(line)
        except ValueError:
            continue
        if isinstance(payload, dict) and "torch" in payload:
            return DeviceInfo(payload["torch"], payload.get("cuda"), list(payload.get("gpus") or []))
    return DeviceInfo()


def estimate_seconds(voxels: int, quality: str, on_gpu: bool) -> float:
    """A rough run time for a volume of ``voxels`` voxels."""
    seconds = CPU_SECONDS_PER_MEGAVOXEL[quality] * voxels / 1e6
    return MODEL_LOADING_SECONDS + (seconds / GPU_SPEEDUP if on_gpu else seconds)


def describe_estimate(voxels: int, quality: str, device: str, info: DeviceInfo) -> str:
    """'About 4 min on the CPU' style text for the chosen device."""
    on_gpu = device == "cuda" or (device == "auto" and info.has_gpu)
    minutes = estimate_seconds(voxels, quality, on_gpu) / 60.0
    where = _("on the GPU") if on_gpu else _("on the CPU")
    # CPU figures come from the benchmark; no GPU has been measured yet
    kind = _("Rough guess, GPU not yet measured:") if on_gpu else _("Estimate from a 2-core benchmark:")
    if minutes < 1.0:
        return _("{kind} a minute or less {where}").format(kind=kind, where=where)
    return _("{kind} about {minutes:.0f} min {where}").format(kind=kind, minutes=minutes, where=where)
