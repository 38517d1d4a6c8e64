"""Small trained modules on disk (attention heads, refinement head): one safetensors file with the
module's config in its metadata; never a pickle. One code path for every trained head."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import DiffuGTSError
from ..io import atomic_output

M = TypeVar("M", bound=nn.Module)
ENGINE_DIR = Path(__file__).resolve().parents[1]
# what -> (the `diffugts train` target that makes one, the option that passes it on)
TRAINED_BY = {"attention heads": ("attention", "--heads"), "refinement head": ("refine", "--refine")}


def save_module(module: nn.Module, config: dict, path: str | Path, extra: dict | None = None) -> Path:
    """Write ``module``'s weights with ``config`` (enough to rebuild it) and ``extra`` facts, atomically."""
    metadata = {"config": json.dumps(config), "extra": json.dumps(extra or {})}
    state = {name: tensor.detach().contiguous() for name, tensor in module.state_dict().items()}
    with atomic_output(path) as temp:
        save_file(state, str(temp), metadata=metadata)
    return Path(path)


def load_module(path: str | Path, build: Callable[[dict], M], *, what: str, hint: str) -> tuple[M, dict]:
    """The module ``build(config)`` with the saved weights, and the ``extra`` facts; a missing, wrong or
    damaged file gives a one-line error naming ``what`` it should have been."""
    path = Path(path)
    if not path.is_file():
        if ENGINE_DIR in path.resolve().parents and what in TRAINED_BY:  # the bundled file of a backbone without one
            backbone = path.name.removesuffix(".safetensors").removesuffix("-refine")
            command, option = TRAINED_BY[what]
            raise DiffuGTSError(
                f"the engine ships no {what} for backbone {backbone}",
                hint=f"Train them for it with 'diffugts train {command} --backbone {backbone} --weights DIR "
                     f"--out DIR' and pass the file it writes with {option}; or use the demo model (demo-ct).")
        raise DiffuGTSError(f"{what} file not found", path=path, hint=hint)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        module = build(json.loads(metadata["config"]))
        module.load_state_dict(load_file(str(path)))
    except (SafetensorError, KeyError, ValueError, TypeError, RuntimeError, OSError) as error:
        raise DiffuGTSError(f"not a valid {what} file ({type(error).__name__})", path=path,
                            hint="Re-train or re-install it; only files written by diffugts are accepted.") from None
    return module.eval(), json.loads(metadata.get("extra", "{}"))
