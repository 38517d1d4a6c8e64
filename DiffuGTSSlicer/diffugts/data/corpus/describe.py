"""What the corpus records about an image from its manifest row or file name: modality and tumor status."""

from __future__ import annotations

import re
from pathlib import Path

from ...errors import DiffuGTSError
from ...io.sequence import modality_in_name, normalize_modality, sequence_of

_NEGATED = re.compile(r"\b(?:no|not|without|free of|negative for)\s+(?:\w+\s+){0,2}?"
                      r"(?:tumou?rs?|lesions?|nodules?|masses)\b|\b(?:tumou?r|lesion)[- ]free\b")
_LESION = re.compile(r"\b(?:tumou?rs?|lesions?|stroke|nodules?|mass(?:es)?|cancer|carcinoma|metasta\w*|glioma|"
                     r"schwannoma|meningioma|sarcoma|lymphoma)\b")
_NEGATIVE_CONTROL = re.compile(r"negative[- ]control")


def sequence_from_name(path: str | Path) -> str | None:
    """The MR sequence a file name states (_flair, _t1ce, _t1gd, _t2, _t1, _pd, ...), or None (the engine's rules,
    io.sequence)."""
    named = modality_in_name(Path(path).name)
    return named if named and sequence_of(named) else None


def modality_of(declared: str, path: str | Path) -> str | None:
    """'CT', an MR sequence, or 'MR': the declared modality, refined by the file name; None when unknown."""
    try:
        canonical = normalize_modality(declared) if declared.strip() else None
    except DiffuGTSError:
        canonical = "MR" if declared.strip().upper().startswith("MR") else None
    if canonical in (None, "MR"):
        named = modality_in_name(Path(path).name)
        if named and (sequence_of(named) or (canonical is None and named == "CT")):
            return named
    return canonical


def tumor_status(has_mask: bool, *texts: str) -> str:
    """'yes' with a tumor mask; 'unknown' when the text mentions a lesion it does not deny; else 'no'.

    A negative-control prompt ("kidney tumor" on a scan whose labels say "negative control") is not a lesion.
    """
    if has_mask:
        return "yes"
    text = " ".join(t.lower() for t in texts)
    if _NEGATIVE_CONTROL.search(text):
        text = " ".join(t.lower() for t in texts[1:])  # the first text is the prompt
    return "unknown" if _LESION.search(_NEGATED.sub(" ", text)) else "no"
