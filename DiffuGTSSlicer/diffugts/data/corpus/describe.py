"""What the corpus records about an image from its manifest row or file name: modality and tumor status."""

from __future__ import annotations

import re
from pathlib import Path

from ..readers.brats import SEQUENCE_TOKENS

MODALITIES = ("CT", "MR-T1", "MR-T1c", "MR-T2", "MR-FLAIR", "MR")
_CANONICAL = {name.upper(): name for name in MODALITIES} | {"MRI": "MR"}
_NEGATED = re.compile(r"\b(?:no|not|without|free of|negative for)\s+(?:\w+\s+){0,2}?"
                      r"(?:tumou?rs?|lesions?|nodules?|masses)\b|\b(?:tumou?r|lesion)[- ]free\b")
_LESION = re.compile(r"\b(?:tumou?rs?|lesions?|stroke|nodules?|mass(?:es)?|cancer|carcinoma|metasta\w*|glioma|"
                     r"schwannoma|meningioma|sarcoma|lymphoma)\b")
_NEGATIVE_CONTROL = re.compile(r"negative[- ]control")


def sequence_from_name(path: str | Path) -> str | None:
    """The MR sequence a file name states by a token (_flair, _t1ce, _t1gd, _t2, _t1, ...), or None."""
    stem = re.sub(r"\.(nii(\.gz)?|nrrd|nhdr|mha|mhd)$", "", Path(path).name.lower())
    for token in reversed(re.split(r"[_\-. ]+", stem)):
        if token in SEQUENCE_TOKENS:
            return SEQUENCE_TOKENS[token]
    return None


def is_ct_name(path: str | Path) -> bool:
    return "ct" in re.split(r"[_\-. ]+", Path(path).name.lower())


def modality_of(declared: str, path: str | Path) -> str | None:
    """'CT', an MR sequence, or 'MR': the declared modality, refined by the file name; None when unknown."""
    canonical = _CANONICAL.get(declared.strip().upper())
    if canonical is None and declared.strip().upper().startswith("MR"):
        canonical = "MR"
    if canonical in (None, "MR"):
        sequence = sequence_from_name(path)
        if sequence:
            return sequence
        if canonical is None and is_ct_name(path):
            return "CT"
    return canonical


def family(modality: str) -> str:
    """'CT' or 'MR': patients are split within each family."""
    return "CT" if modality == "CT" else "MR"


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
