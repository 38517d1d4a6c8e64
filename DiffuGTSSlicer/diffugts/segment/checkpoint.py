"""The refinement head on disk (safetensors, config in the metadata) and the one shipped with the engine."""

from __future__ import annotations

from pathlib import Path

from ..weights.module_file import load_module, save_module
from .refine import RefineConfig, RefineHead

BUNDLED_DIR = Path(__file__).parent / "bundled"


def bundled_refine_path(backbone: str = "demo-ct") -> Path:
    """The refinement head shipped for ``backbone`` (trained by ``diffugts train refine``)."""
    return BUNDLED_DIR / f"{backbone}-refine.safetensors"


def save_refine(head: RefineHead, path: str | Path, extra: dict | None = None) -> Path:
    return save_module(head, head.config.to_dict(), path, extra)


def load_refine(path: str | Path) -> tuple[RefineHead, dict]:
    return load_module(path, lambda config: RefineHead(RefineConfig.from_dict(config)), what="refinement head",
                       hint="Train one with 'diffugts train refine' or use the bundled one.")
