"""Prompt -> segment name, color and Slicer terminology: the one table the engine and the Slicer module share.

Slicer's terminology has no "tumor" type, so prompts map explicitly to its Morphologically Altered
Structure category: type Neoplasm (tumor, cancer, carcinoma, glioma, metastasis...) or Mass (mass,
lesion, nodule, cyst and anything unrecognised), with the organ as anatomic region when the prompt
names one. Pure Python, no dependencies: the Slicer module imports it at load time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CONTEXT = "Segmentation category and type - 3D Slicer General Anatomy list"
ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"
CATEGORY = "SCT^49755003^Morphologically Altered Structure"
MASS = "SCT^4147007^Mass"
NEOPLASM = "SCT^108369006^Neoplasm"

Color = tuple[float, float, float]


@dataclass(frozen=True)
class Organ:
    """An anatomic region: its SNOMED CT code, the words that name it in prompts, and a display color."""

    code: str
    words: tuple[str, ...]
    color: Color

    @property
    def name(self) -> str:
        """The lower-case display name: 'SCT^64033007^Kidney' -> 'kidney'."""
        return self.code.split("^")[-1].lower()


ORGANS: tuple[Organ, ...] = (
    Organ("SCT^10200004^Liver", ("liver", "hepatic", "hepato", "hcc"), (0.87, 0.45, 0.20)),
    Organ("SCT^64033007^Kidney", ("kidney", "renal", "nephro"), (0.85, 0.25, 0.55)),
    Organ("SCT^39607008^Lung", ("lung", "pulmonary", "bronch", "nsclc"), (0.95, 0.80, 0.20)),
    Organ("SCT^15776009^Pancreas", ("pancrea",), (0.55, 0.35, 0.85)),
    Organ("SCT^71854001^Colon", ("colon", "colorectal", "rectal", "rectum", "bowel"), (0.30, 0.70, 0.35)),
    Organ("SCT^12738006^Brain", ("brain", "glioma", "glioblastoma", "cerebral", "intracranial", "meningioma"),
          (0.90, 0.30, 0.25)),
    Organ("SCT^76752008^Breast", ("breast", "mammary"), (0.95, 0.55, 0.65)),
    Organ("SCT^272673000^Bone", ("bone", "osseous", "skeletal", "vertebra", "spine", "osteo"), (0.90, 0.85, 0.65)),
    Organ("SCT^89837001^Urinary bladder", ("bladder", "urothelial"), (0.40, 0.65, 0.90)),
    Organ("SCT^41216001^Prostate", ("prostat",), (0.30, 0.55, 0.75)),
    Organ("SCT^69695003^Stomach", ("stomach", "gastric"), (0.75, 0.60, 0.30)),
    Organ("SCT^32849002^Esophagus", ("esophag", "oesophag"), (0.65, 0.45, 0.35)),
    Organ("SCT^69748006^Thyroid", ("thyroid",), (0.35, 0.80, 0.75)),
    Organ("SCT^23451007^Adrenal gland", ("adrenal",), (0.80, 0.70, 0.30)),
    Organ("SCT^78961009^Spleen", ("spleen", "splenic"), (0.60, 0.25, 0.35)),
    Organ("SCT^59441001^Lymph node", ("lymph", "nodal"), (0.55, 0.75, 0.30)),
)

NEOPLASM_WORDS = ("tumor", "tumour", "cancer", "carcinoma", "neoplasm", "malignan", "glioma", "glioblastoma",
                  "metasta", "sarcoma", "lymphoma", "adenoma", "meningioma", "hcc", "nsclc")
UNKNOWN_ORGAN_COLORS: tuple[Color, ...] = (
    (0.20, 0.60, 0.95), (0.95, 0.45, 0.15), (0.45, 0.85, 0.45), (0.85, 0.35, 0.85), (0.95, 0.85, 0.30),
)


@dataclass(frozen=True)
class SegmentDescription:
    """How one prompt appears as a segment: its name, RGB color in [0, 1] and TerminologyEntry string."""

    name: str
    color: Color
    terminology: str


def _words(prompt: str) -> list[str]:
    return re.findall(r"[a-z]+", prompt.lower())


def _has(words: list[str], stems: tuple[str, ...]) -> bool:
    return any(word.startswith(stem) for word in words for stem in stems)


def find_organ(prompt: str) -> Organ | None:
    """The first organ the prompt names (by word start, so 'pancreatic' finds the pancreas), or None."""
    words = _words(prompt)
    return next((organ for organ in ORGANS if _has(words, organ.words)), None)


def terminology_entry(type_code: str, organ: Organ | None) -> str:
    """A Slicer TerminologyEntry string: context~category~type~modifier~anatomic context~region~modifier."""
    region = organ.code if organ else "^^"
    return "~".join([CONTEXT, CATEGORY, type_code, "^^", ANATOMIC_CONTEXT if organ else "", region, "^^"])


def describe(prompt: str, index: int = 0) -> SegmentDescription:
    """Name, color and terminology for one prompt; ``index`` picks a color when no organ is named."""
    name = " ".join(prompt.split())
    if not name:
        raise ValueError("an empty prompt has no segment")
    organ = find_organ(name)
    type_code = NEOPLASM if _has(_words(name), NEOPLASM_WORDS) else MASS
    color = organ.color if organ else UNKNOWN_ORGAN_COLORS[index % len(UNKNOWN_ORGAN_COLORS)]
    return SegmentDescription(name, color, terminology_entry(type_code, organ))


def describe_all(prompts: list[str]) -> list[SegmentDescription]:
    """One description per prompt; a repeated organ color is shaded lighter, then darker, to stay distinct."""
    descriptions: list[SegmentDescription] = []
    base_colors: list[Color] = []
    for index, prompt in enumerate(prompts):
        description = describe(prompt, index)
        repeats = base_colors.count(description.color)
        base_colors.append(description.color)
        if repeats:
            target = 1.0 if repeats % 2 else 0.0
            weight = min(0.6, 0.25 * ((repeats + 1) // 2))
            color = tuple(round(c + (target - c) * weight, 4) for c in description.color)
            description = SegmentDescription(description.name, color, description.terminology)
        descriptions.append(description)
    return descriptions
