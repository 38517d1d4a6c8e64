"""Guess whether a volume is CT or MR, and say why."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

_NAME_TOKENS = {
    "CT": re.compile(r"(^|[^a-z])(ct|cta|hu)([^a-z]|$)"),
    "MR": re.compile(r"(^|[^a-z])(mr|mri|t1|t1c|t1ce|t1gd|t2|flair|pd|dwi|adc)([^a-z]|$)"),
}


def guess_modality(array: np.ndarray, *, path: str | None = None, dicom_modality: str | None = None) -> tuple[str, str]:
    """Return ("CT" | "MR", reason) from the DICOM tag, the file name, or the intensity range."""
    if dicom_modality and dicom_modality.strip().upper() in ("CT", "MR"):
        return dicom_modality.strip().upper(), "DICOM Modality tag"
    if path:
        name = Path(path).name.lower()
        hits = [modality for modality, pattern in _NAME_TOKENS.items() if pattern.search(name)]
        if len(hits) == 1:
            return hits[0], f"file name {Path(path).name!r}"
    low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    if low <= -500 and high >= 200:
        return "CT", f"intensities {low:g}..{high:g} look like Hounsfield units"
    return "MR", f"intensities {low:g}..{high:g} are not in Hounsfield units"
