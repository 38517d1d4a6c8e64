"""The panel's choices as one dataclass, stored in the module's parameter node (a vtkMRMLScriptedModuleNode)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from diffugts.io.sequence import MODALITIES as ENGINE_MODALITIES

MODALITIES = ("auto", *ENGINE_MODALITIES)  # the panel's Modality list, in this order (its .ui lists the same)
QUALITIES = ("fast", "balanced", "best")
DEVICES = ("auto", "cpu", "cuda")
INPUT_VOLUME_REFERENCE = "InputVolume"
OUTPUT_SEGMENTATION_REFERENCE = "OutputSegmentation"


@dataclass
class Parameters:
    """Everything one segmentation run needs besides the nodes themselves."""

    prompts: list[str] = field(default_factory=list)
    modality: str = "auto"
    quality: str = "balanced"
    device: str = "auto"
    seed: int = 0
    roi: str = ""  # "I0:I1,J0:J1,K0:K1" voxel box of the input to work in (the engine checks it); empty: all
    threads: int = 0  # CPU threads for the engine's networks; 0: the engine's choice
    load_heat_map: bool = True
    load_pseudo_healthy: bool = False
    load_uncertainty: bool = False
    models_folder: str = ""  # DIFFUGTS_HOME for the engine; empty: its default user data folder
    backbone: str = ""  # a downloaded package's backbone (e.g. MAISI's); empty: the engine's bundled demo models
    weights: str = ""  # that package's folder; empty: the engine finds the backbone's weights itself
    heads: str = ""  # attention heads trained for the backbone; empty: the engine's bundled ones
    refine: str = ""  # refinement head trained for the backbone; empty: the engine's bundled one
    server_url: str = ""
    server_token: str = ""  # kept in memory only: never written to the scene

    def __post_init__(self) -> None:
        for name, allowed in (("modality", MODALITIES), ("quality", QUALITIES), ("device", DEVICES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        if self.threads < 0:
            raise ValueError(f"threads must be 0 (the engine's choice) or more, not {self.threads}")

    @staticmethod
    def prompts_from_text(text: str) -> list[str]:
        """One prompt per non-empty line, whitespace tidied, duplicates dropped (first kept)."""
        prompts: list[str] = []
        for line in text.splitlines():
            prompt = " ".join(line.split())
            if prompt and prompt.lower() not in (p.lower() for p in prompts):
                prompts.append(prompt)
        return prompts

    def write_to(self, node: Any) -> None:
        """Store every field except the server token as a string parameter of ``node``."""
        for item in fields(self):
            if item.name == "server_token":
                continue
            value = getattr(self, item.name)
            text = "\n".join(value) if isinstance(value, list) else str(value)
            node.SetParameter(item.name, text)

    @classmethod
    def read_from(cls, node: Any) -> Parameters:
        """The parameters stored in ``node``; defaults for any not stored yet."""
        defaults = cls()
        values: dict[str, Any] = {}
        for item in fields(cls):
            text = node.GetParameter(item.name)
            if item.name == "server_token" or not text and not isinstance(getattr(defaults, item.name), str):
                continue
            default = getattr(defaults, item.name)
            if isinstance(default, bool):
                values[item.name] = text == "True"
            elif isinstance(default, int):
                values[item.name] = int(text)
            elif isinstance(default, list):
                values[item.name] = [line for line in text.split("\n") if line]
            else:
                values[item.name] = text or default
        return cls(**values)
