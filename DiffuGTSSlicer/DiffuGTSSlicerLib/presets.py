"""Prompt presets per modality and the history of prompts a person ran."""

from __future__ import annotations

from typing import Any

from diffugts.io.sequence import family

PRESETS: dict[str, tuple[str, ...]] = {
    "CT": ("liver tumor", "kidney tumor", "pancreatic tumor", "lung nodule", "colon cancer",
           "hepatic vessel tumor", "bladder tumor", "bone metastasis"),
    "MR": ("glioma", "brain metastasis", "meningioma", "breast tumor", "prostate cancer", "liver lesion"),
}
HISTORY_KEY = "DiffuGTS/PromptHistory"
HISTORY_LENGTH = 20


def presets_for(modality: str) -> tuple[str, ...]:
    """Presets for 'CT' or 'MR' (any MR sequence: 'MR-T1c', ...); for 'auto', all of them, CT first, no repeats."""
    modality_family = family(modality)
    if modality_family in PRESETS:
        return PRESETS[modality_family]
    return tuple(dict.fromkeys(p for group in PRESETS.values() for p in group))


class PromptHistory:
    """Most recent first, no repeats, at most HISTORY_LENGTH; kept in a QSettings-like store (value/setValue)."""

    def __init__(self, settings: Any) -> None:
        self._settings = settings

    def entries(self) -> list[str]:
        stored = self._settings.value(HISTORY_KEY, "") or ""
        return [line for line in str(stored).split("\n") if line]

    def add(self, prompts: list[str]) -> None:
        entries = [p for p in prompts if p] + [e for e in self.entries() if e not in prompts]
        self._settings.setValue(HISTORY_KEY, "\n".join(entries[:HISTORY_LENGTH]))
