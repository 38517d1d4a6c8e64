"""Attention heads on disk: one safetensors file, the HeadsConfig in its metadata; never a pickle."""

from __future__ import annotations

from pathlib import Path

from ..weights.module_file import load_module, save_module
from .heads import AttentionHeads, HeadsConfig

BUNDLED_DIR = Path(__file__).parent / "bundled"


def bundled_heads_path(backbone: str = "demo-ct") -> Path:
    """The heads shipped with the engine for ``backbone`` (trained by ``diffugts train attention``)."""
    return BUNDLED_DIR / f"{backbone}.safetensors"


def save_heads(heads: AttentionHeads, path: str | Path, extra: dict | None = None) -> Path:
    """Write heads and their config (plus ``extra`` facts, e.g. training metrics) atomically."""
    return save_module(heads, heads.config.to_dict(), path, extra)


def load_heads(path: str | Path) -> tuple[AttentionHeads, dict]:
    """Heads and the ``extra`` facts saved with them; a wrong or damaged file gives a clear error."""
    return load_module(path, lambda config: AttentionHeads(HeadsConfig.from_dict(config)), what="attention heads",
                       hint="Train heads with 'diffugts train attention' or use the bundled ones.")
