"""Load and save network weights without unpickling: safetensors, or torch.load(weights_only=True)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..errors import DiffuGTSError

SAFE_SUFFIXES = (".safetensors",)
TORCH_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
_NESTED_KEYS = ("unet_state_dict", "state_dict", "model_state_dict", "model")


def load_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(state dict, metadata) from a weights file; a checkpoint wrapping a state dict is unwrapped.

    ``.safetensors`` are read with safetensors; ``.pt``-style files with ``torch.load(weights_only=True)``,
    which refuses any pickled object other than tensors and plain containers.
    """
    path = Path(path)
    if not path.is_file():
        raise DiffuGTSError("weights file not found", path=path,
                            hint="Pass --weights DIR with the files, or run 'diffugts weights list'.")
    suffix = path.suffix.lower()
    metadata: dict[str, str] = {}
    if suffix in SAFE_SUFFIXES:
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt", device="cpu") as handle:
                metadata = dict(handle.metadata() or {})
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        except Exception as error:  # noqa: BLE001 - any parse failure is a bad file
            raise DiffuGTSError(f"not a valid safetensors file ({error})", path=path,
                                hint="Delete it and download or copy it again.") from None
        return tensors, metadata
    if suffix not in TORCH_SUFFIXES:
        raise DiffuGTSError(f"unknown weights format {suffix!r}", path=path,
                            hint="Use .safetensors (preferred) or a PyTorch state dict (.pt/.pth).")
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - UnpicklingError and friends
        raise DiffuGTSError(
            f"refused to load: not a plain tensor checkpoint ({type(error).__name__})", path=path,
            hint="Only safetensors or weights-only PyTorch files are loaded (no pickled code). "
            "Convert it with a trusted tool to .safetensors.",
        ) from None
    if not isinstance(data, dict):
        raise DiffuGTSError("checkpoint is not a dictionary of tensors", path=path)
    for key in _NESTED_KEYS:
        if isinstance(data.get(key), dict):
            for extra_key, value in data.items():
                scalar = isinstance(value, (int, float)) or (isinstance(value, torch.Tensor) and value.numel() == 1)
                if extra_key != key and scalar:
                    metadata[extra_key] = str(float(value))
            data = data[key]
            break
    tensors = {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise DiffuGTSError("checkpoint holds no tensors", path=path)
    return tensors, metadata


def load_into(module: torch.nn.Module, path: str | Path, what: str) -> dict[str, str]:
    """Load a weights file into ``module`` (strict); returns the file's metadata."""
    tensors, metadata = load_tensors(path)
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        first = str(error).splitlines()[0:3]
        raise DiffuGTSError(
            f"the {what} weights do not match the configured network ({' '.join(first)[:300]})", path=path,
            hint="Check that the weights belong to this backbone config (for example MAISI v1 vs v2).",
        ) from None
    return metadata


def save_safetensors(module_or_tensors, path: str | Path, metadata: dict[str, object] | None = None) -> Path:
    """Write weights as safetensors, atomically."""
    from safetensors.torch import save_file

    from ..io import atomic_output

    tensors = module_or_tensors.state_dict() if isinstance(module_or_tensors, torch.nn.Module) else module_or_tensors
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}
    with atomic_output(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return Path(path)
