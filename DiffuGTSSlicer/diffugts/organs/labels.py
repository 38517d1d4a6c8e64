"""The engine's organ vocabulary: one label value per organ, and the maps from public label legends to it.

Corpus organ maps, atlases, organ priors and synthesized cases all use these values, so an organ map
from TotalSegmentator (CT or MR), FreeSurfer or a written-out legend ("1=aorta") means the same thing
everywhere. Organ names are the lower-case display names of diffugts.terminology (prompts find them).
Pure Python.
"""

from __future__ import annotations

import re

ORGAN_LABELS: dict[int, str] = {
    1: "liver", 2: "kidney", 3: "spleen", 4: "pancreas", 5: "lung", 6: "colon", 7: "bone", 8: "brain",
    9: "stomach", 10: "urinary bladder", 11: "aorta", 12: "heart", 13: "muscle", 14: "small bowel",
    15: "esophagus", 16: "thyroid", 17: "prostate", 18: "adrenal gland", 19: "gallbladder", 20: "vessel",
    21: "airway", 22: "spinal cord",
}
LABEL_OF: dict[str, int] = {name: value for value, name in ORGAN_LABELS.items()}

_BONE = ("sacrum", "vertebrae", "rib", "sternum", "skull", "humerus", "scapula", "clavicula", "femur", "hip",
         "costal_cartilages", "intervertebral_discs")
_MUSCLE = ("gluteus", "autochthon", "iliopsoas")
_VESSEL = ("pulmonary", "brachiocephalic", "subclavian", "common_carotid", "atrial_appendage", "vena_cava",
           "portal_vein", "iliac_")


def organ_of_structure(name: str) -> str | None:
    """The vocabulary organ a TotalSegmentator (or written-out) structure name belongs to, or None."""
    key = name.strip().lower().replace(" ", "_")
    if key.startswith(("kidney_cyst",)):
        return "kidney"
    if key.startswith(("lung_",)) or key == "lung":
        return "lung"
    if key.startswith("kidney"):
        return "kidney"
    if key.startswith("adrenal"):
        return "adrenal gland"
    if key in ("small_bowel", "duodenum"):
        return "small bowel"
    if key == "trachea":
        return "airway"
    if key == "thyroid_gland":
        return "thyroid"
    if key.startswith(_BONE):
        return "bone"
    if key.startswith(_MUSCLE):
        return "muscle"
    if any(part in key for part in _VESSEL):
        return "vessel"
    plain = key.replace("_", " ")
    return plain if plain in LABEL_OF else None


def legend_to_vocabulary(legend: dict[int, str]) -> dict[int, int]:
    """Source label value -> vocabulary label value, for every source value whose structure is known."""
    mapping = {}
    for value, name in legend.items():
        organ = organ_of_structure(name)
        if organ is not None:
            mapping[int(value)] = LABEL_OF[organ]
    return mapping


def parse_written_legend(text: str) -> dict[int, str]:
    """'1=aorta' or '1=brain; 2=...' -> {1: 'aorta', ...}; text without 'N=name' pairs gives {}."""
    pairs = re.findall(r"(\d+)\s*=\s*([A-Za-z][A-Za-z _-]*?)(?=\s*(?:[;,(]|\d+\s*=|$))", text)
    return {int(value): name.strip() for value, name in pairs}
