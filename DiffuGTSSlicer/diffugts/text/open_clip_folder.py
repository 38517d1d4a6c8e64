"""The text tower of an open_clip model folder with a Hugging Face text model, such as BiomedCLIP.

Read without the open_clip library (its torchvision dependency ships CUDA-only builds on PyPI), as
open_clip 3.x builds it (``hf_model.HFTextEncoder``): the transformer, a pooler (CLS token, pooler
output or mean) and a projection (none, linear or MLP), under the checkpoint keys ``text.*``; the
tokenizer files sit in the folder itself, as open_clip's ``local-dir:`` loading expects.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ..errors import DiffuGTSError

CONFIG_NAME = "open_clip_config.json"
# open_clip's own search order for a folder's weights: safetensors first, pickle-free either way
WEIGHT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "model.safetensors",
                "open_clip_pytorch_model.bin", "pytorch_model.bin")
POOLERS = ("cls_last_hidden_state_pooler", "cls_pooler", "mean_pooler")


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """[B, D]: the mean of a transformer's last hidden states [B, T, D] over the tokens the mask keeps."""
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)


def is_open_clip_folder(folder: Path) -> bool:
    return (folder / CONFIG_NAME).is_file()


def _read_text_config(folder: Path) -> tuple[dict, int]:
    path = folder / CONFIG_NAME
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
        model_cfg = config.get("model_cfg", config)
        text_cfg, embed_dim = dict(model_cfg["text_cfg"]), int(model_cfg["embed_dim"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise DiffuGTSError(f"cannot read the open_clip config ({error})", path=path,
                            hint="The file should hold model_cfg.embed_dim and model_cfg.text_cfg.") from None
    if "hf_model_name" not in text_cfg:
        raise DiffuGTSError("this open_clip model has its own text transformer, not a Hugging Face one", path=path,
                            hint="Only open_clip models with a Hugging Face text tower (BiomedCLIP and the like) "
                            "are read; use a CLIP text model folder in Hugging Face format instead.")
    pooler = text_cfg.get("hf_pooler_type") or "cls_pooler"  # open_clip's default for BERT
    if pooler not in POOLERS:
        raise DiffuGTSError(f"unsupported text pooler {pooler!r}", path=path, hint=f"Supported: {', '.join(POOLERS)}.")
    return text_cfg, embed_dim


def _transformer_config(folder: Path, name: str):
    """The text transformer's Hugging Face config: a folder named by the config (absolute, or relative to the
    model folder), a subfolder named after the repository, or the offline Hugging Face cache."""
    from transformers import AutoConfig

    candidates = [Path(name).expanduser(), folder / name, folder / name.rstrip("/").split("/")[-1]]
    for candidate in candidates:
        if (candidate / "config.json").is_file():
            return AutoConfig.from_pretrained(str(candidate), local_files_only=True)
    try:
        return AutoConfig.from_pretrained(name, local_files_only=True)
    except (OSError, ValueError):
        raise DiffuGTSError(
            f"the text transformer config {name!r} named by {CONFIG_NAME} is not available offline", path=folder,
            hint=f"Download that model's config.json into {folder / candidates[-1].name}/ (e.g. huggingface-cli "
            f"download {name} config.json --local-dir {folder / candidates[-1].name}).") from None


def _load_state(folder: Path) -> dict[str, torch.Tensor]:
    for name in WEIGHT_NAMES:
        path = folder / name
        if not path.is_file():
            continue
        try:
            if name.endswith(".safetensors"):
                from safetensors.torch import load_file

                state = load_file(str(path))
            else:
                state = torch.load(path, map_location="cpu", weights_only=True)  # never unpickles code
        except Exception as error:  # noqa: BLE001 - any reader failure is a damaged or foreign file
            raise DiffuGTSError(f"cannot read the model weights ({type(error).__name__}: {error})", path=path,
                                hint="Download the file again.") from None
        return state.get("state_dict", state) if isinstance(state, dict) else {}
    raise DiffuGTSError("no open_clip weights in the folder", path=folder,
                        hint=f"Expected one of: {', '.join(WEIGHT_NAMES)}.")


class OpenClipTextTower(nn.Module):
    """Transformer, pooler and projection, as open_clip's HFTextEncoder."""

    def __init__(self, transformer_config, text_cfg: dict, embed_dim: int) -> None:
        super().__init__()
        from transformers import AutoModel

        self.pooler = text_cfg.get("hf_pooler_type") or "cls_pooler"
        self.transformer = AutoModel.from_config(transformer_config, add_pooling_layer=self.pooler == "cls_pooler")
        self.pad_token_id = transformer_config.pad_token_id
        width = transformer_config.hidden_size
        proj_type = text_cfg.get("hf_proj_type")
        if proj_type is None and width == embed_dim:
            self.proj: nn.Module = nn.Identity()
        elif proj_type == "mlp":
            hidden = (width + embed_dim) // 2
            self.proj = nn.Sequential(nn.Linear(width, hidden, bias=False), nn.GELU(),
                                      nn.Linear(hidden, embed_dim, bias=False))
        else:  # open_clip uses a linear projection for 'linear' and for a width that differs from embed_dim
            self.proj = nn.Linear(width, embed_dim, bias=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        mask = (input_ids != self.pad_token_id).long()
        out = self.transformer(input_ids=input_ids, attention_mask=mask)
        if self.pooler == "mean_pooler":
            pooled = mean_pool(out.last_hidden_state, mask)
        elif self.pooler == "cls_pooler" and getattr(out, "pooler_output", None) is not None:
            pooled = out.pooler_output
        else:
            pooled = out.last_hidden_state[:, 0]
        return self.proj(pooled)


class OpenClipTextEncoder:
    """Embeds texts with the text tower of an open_clip model folder (normalized, like encode_text)."""

    def __init__(self, folder: Path) -> None:
        from transformers import AutoTokenizer

        folder = Path(folder)
        text_cfg, embed_dim = _read_text_config(folder)
        tower = OpenClipTextTower(_transformer_config(folder, text_cfg["hf_model_name"]), text_cfg, embed_dim)
        state = {key[len("text."):]: value for key, value in _load_state(folder).items()
                 if key.startswith("text.") and not key.endswith("position_ids")}  # a buffer in older checkpoints
        if not state:
            raise DiffuGTSError("the weights hold no text tower (no 'text.*' keys)", path=folder,
                                hint="Use the open_clip checkpoint of the whole model.")
        try:
            tower.load_state_dict(state, strict=True)
        except RuntimeError as error:
            raise DiffuGTSError("the weights do not match open_clip_config.json", path=folder,
                                hint=f"Use the config that came with these weights ({str(error).splitlines()[0]})") from None
        self.tower = tower.eval().requires_grad_(False)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError):
            raise DiffuGTSError("the folder has no tokenizer files", path=folder,
                                hint="Copy the model's tokenizer files (vocab.txt, tokenizer_config.json, ...) "
                                "next to open_clip_config.json.") from None
        self.context_length = int(text_cfg.get("context_length", 77))
        self.name = f"open_clip:{folder.resolve()}"
        self.dim = embed_dim

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        cleaned = [" ".join(text.split()) for text in texts]  # open_clip's 'whitespace' cleaning
        ids = self.tokenizer(cleaned, padding=True, truncation=True, max_length=self.context_length,
                             return_tensors="pt").input_ids
        with torch.inference_mode():
            vectors = self.tower(ids)
        return nn.functional.normalize(vectors, dim=-1).float().clone()
