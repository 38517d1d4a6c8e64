"""Attention heads on disk: one safetensors file, the HeadsConfig in its metadata; never a pickle."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..errors import DiffuGTSError
from ..io import atomic_output
from .heads import AttentionHeads, HeadsConfig

BUNDLED_DIR = Path(__file__).parent / "bundled"


def bundled_heads_path(backbone: str = "demo-ct") -> Path:
    """The heads shipped with the engine for ``backbone`` (trained by ``diffugts train attention``)."""
    return BUNDLED_DIR / f"{backbone}.safetensors"


def save_heads(heads: AttentionHeads, path: str | Path, extra: dict | None = None) -> Path:
    """Write heads and their config (plus ``extra`` facts, e.g. training metrics) atomically."""
    metadata = {"config": json.dumps(heads.config.to_dict()), "extra": json.dumps(extra or {})}
    state = {name: tensor.detach().contiguous() for name, tensor in heads.state_dict().items()}
    with atomic_output(path) as temp:
        save_file(state, str(temp), metadata=metadata)
    return Path(path)


def load_heads(path: str | Path) -> tuple[AttentionHeads, dict]:
    """Heads and the ``extra`` facts saved with them; a wrong or damaged file gives a clear error."""
    path = Path(path)
    if not path.is_file():
        raise DiffuGTSError("attention heads file not found", path=path,
                            hint="Train heads with 'diffugts train attention' or use the bundled ones.")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        config = HeadsConfig.from_dict(json.loads(metadata["config"]))
        heads = AttentionHeads(config)
        heads.load_state_dict(load_file(str(path)))
    except (SafetensorError, KeyError, ValueError, TypeError, RuntimeError, OSError) as error:
        raise DiffuGTSError(f"not a valid attention heads file ({type(error).__name__})", path=path,
                            hint="Re-train or re-install it; only files written by diffugts are accepted.") from None
    return heads.eval(), json.loads(metadata.get("extra", "{}"))
