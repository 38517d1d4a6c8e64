"""Disk cache of text embeddings, keyed by encoder and text: a prompt is embedded once per machine."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..io import atomic_output
from .encoders import TextEncoder


class CachedTextEncoder:
    """Wraps a TextEncoder; ``hits`` and ``misses`` count texts served from disk and newly embedded."""

    def __init__(self, encoder: TextEncoder, directory: Path) -> None:
        self.encoder = encoder
        self.name, self.dim = encoder.name, encoder.dim
        self.directory = Path(directory) / re.sub(r"[^A-Za-z0-9._@-]+", "_", encoder.name).strip("_")
        self.hits = self.misses = 0

    def _path(self, text: str) -> Path:
        return self.directory / f"{hashlib.sha256(text.encode()).hexdigest()}.npy"

    def _load(self, text: str) -> np.ndarray | None:
        path = self._path(text)
        if not path.is_file():
            return None
        try:
            vector = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None  # a damaged entry is recomputed
        return vector if vector.shape == (self.dim,) else None

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        vectors = {text: self._load(text) for text in dict.fromkeys(texts)}
        missing = [text for text, vector in vectors.items() if vector is None]
        self.hits += len(vectors) - len(missing)
        self.misses += len(missing)
        if missing:
            for text, vector in zip(missing, self.encoder.embed(missing).numpy()):
                vectors[text] = vector
                with atomic_output(self._path(text)) as temp:
                    np.save(temp, vector.astype(np.float32), allow_pickle=False)
        return torch.from_numpy(np.stack([vectors[text] for text in texts]).astype(np.float32))
