"""Modality and MR sequence names: one spelling each (CT, MR, MR-T1, MR-T1c, ...), read from what users,
file names, prompts and DICOM headers say."""

from __future__ import annotations

import re

from ..errors import DiffuGTSError

SEQUENCES = ("MR-T1", "MR-T1c", "MR-T2", "MR-FLAIR", "MR-PD", "MR-DWI", "MR-ADC")
MODALITIES = ("CT", "MR", *SEQUENCES)
MAISI_CLASSES = {  # MAISI v2's modality class names (its modality_mapping.json); MAISI has no contrast-T1 class
    "CT": "ct", "MR": "mri", "MR-T1": "mri_t1", "MR-T1c": "mri_t1", "MR-T2": "mri_t2", "MR-FLAIR": "mri_flair",
    "MR-PD": "mri_pd", "MR-DWI": "mri_dwi", "MR-ADC": "mri_adc",
}
_T1 = re.compile(r"^(t1w?|t1n|t1[-_]?(weighted)?|mprage|spgr|bravo|t1pre)$")  # t1n: BraTS 2023's native T1
_T1C = re.compile(r"^(t1c|t1ce|t1gd|t1post|t1wce|t1contrast|t1\+c|t1w?ce)$")
_CONTRAST = {"c", "ce", "gd", "gad", "gado", "gadolinium", "post", "postcontrast", "contrast", "enhanced", "postgad"}
_SEQUENCE_TOKENS = {
    "MR-FLAIR": re.compile(r"^((t2)?flair|t2f)$"),  # t2f: BraTS 2023's FLAIR
    "MR-T2": re.compile(r"^(t2w?|t2[-_]?weighted|t2star|t2\*|swi|haste|ssfse)$"),
    "MR-PD": re.compile(r"^(pdw?|pd[-_]?weighted)$"),
    "MR-DWI": re.compile(r"^(dwi|diffusion|trace|tracew|b1000)$"),
    "MR-ADC": re.compile(r"^adc$"),
}
_FAMILY_TOKENS = {"CT": re.compile(r"^(ct|cta|hu)$"), "MR": re.compile(r"^(mr|mri|mrt|nmr)$")}
_ALIASES = {"mri": "MR", "mr": "MR", "ct": "CT", "t1c": "MR-T1c", "t1ce": "MR-T1c", "t1gd": "MR-T1c",
            "t1+c": "MR-T1c", "t1post": "MR-T1c"}


def tokens(text: str) -> list[str]:
    """Lower-case words of a name or sentence ('t1+c' and 't2*' kept whole)."""
    return [t for t in re.split(r"[^a-z0-9+*]+", text.lower()) if t]


def sequence_in_text(text: str, *, contrast_alone: bool = False) -> str | None:
    """The one MR sequence a text names ('AX T1 POST GD' -> 'MR-T1c'), or None when it names none or several;
    ``contrast_alone``: contrast words without 'T1' mean T1c (prompts: 'post-contrast', 'gadolinium')."""
    words = tokens(text.replace("t1+c", "t1c").replace("T1+C", "t1c"))
    found = {name for name, pattern in _SEQUENCE_TOKENS.items() if any(pattern.match(w) for w in words)}
    if "MR-FLAIR" in found:  # FLAIR is T2-weighted: 't2_flair' names FLAIR
        found.discard("MR-T2")
    contrast = any(w in _CONTRAST for w in words) and "pre" not in words and "precontrast" not in words
    if any(_T1C.match(w) for w in words) or (contrast and (contrast_alone or any(_T1.match(w) for w in words))):
        found.add("MR-T1c")
    elif any(_T1.match(w) for w in words):
        found.add("MR-T1")
    return found.pop() if len(found) == 1 else None


def modality_in_name(name: str) -> str | None:
    """The modality a file name says ('brats_t1c.nii.gz' -> 'MR-T1c', 'lung_ct.nii.gz' -> 'CT'), or None
    when it says none or contradicts itself."""
    words = tokens(name)
    sequence = sequence_in_text(name)
    families = {f for f, pattern in _FAMILY_TOKENS.items() if any(pattern.match(w) for w in words)}
    if sequence:
        families.add("MR")
    if len(families) != 1:
        return None
    return sequence if sequence else families.pop()


def normalize_modality(text: str) -> str:
    """The engine's spelling of a user's modality ('T1ce' -> 'MR-T1c', 'MRI' -> 'MR', 'flair' -> 'MR-FLAIR')."""
    raw = str(text).strip()
    key = raw.lower()
    if key in _ALIASES:
        return _ALIASES[key]
    for name in MODALITIES:
        if key == name.lower():
            return name
    rest = re.sub(r"^mri?[-_ ]?", "", key)
    sequence = sequence_in_text(rest) if rest else None
    if sequence:
        return sequence
    raise DiffuGTSError(f"unknown modality {raw!r}", hint=f"Use one of {', '.join(MODALITIES)}.")


def family(modality: str) -> str:
    """'CT' or 'MR' of an engine modality name ('MR-T1c' -> 'MR')."""
    return "MR" if modality.upper().startswith("MR") else "CT" if modality.upper().startswith("CT") else modality


def sequence_of(modality: str) -> str | None:
    """The sequence part ('MR-T1c' -> 'T1c'), or None for 'MR', 'CT'."""
    return modality.split("-", 1)[1] if modality.upper().startswith("MR-") else None


def modality_class(modality: str, labels: dict[str, int]) -> int:
    """The network's modality class of an engine modality: its own label ('ct_contrast'), else the sequence's MAISI
    class ('MR-T1c' -> 'mri_t1'), else MR's or CT's; a modality the network does not know is an error."""
    try:
        name: str | None = normalize_modality(modality)
    except DiffuGTSError:
        name = None
    keys = [modality.lower()]
    if name is not None:
        keys += [MAISI_CLASSES[name], *(("mri", "mr") if name.startswith("MR") else ("ct",))]
    for key in keys:
        if key in labels:
            return int(labels[key])
    raise DiffuGTSError(f"the backbone has no modality class for {modality!r}",
                        hint=f"Its classes: {', '.join(sorted(labels))}.")
