"""Tissue and lesion labels, and their intensities per modality: (mean, texture SD) in HU for CT, a.u. for MR.

CT values are portal-venous-phase Hounsfield units; MR values are relative signal (0-1000) for
T1-, post-contrast T1-, T2- and FLAIR-like contrast.
"""

from __future__ import annotations

import numpy as np

# Organ label map values (written in *_labels.nii.gz); lesion compartments are written as LESION_OFFSET + kind.
TISSUES = (
    "air", "skin", "fat", "muscle", "cortical bone", "bone marrow", "lung", "lung vessel", "liver",
    "hepatic vessel", "kidney", "spleen", "pancreas", "colon wall", "colon lumen", "bladder", "blood", "csf",
    "gray matter", "white matter", "ventricle",
)
LESIONS = (
    "none", "hypodense lesion", "hyperdense lesion", "solid tumor", "heterogeneous tumor", "cyst", "necrosis",
    "enhancing rim", "edema", "lytic lesion", "sclerotic lesion",
)
LESION_OFFSET = 100
T = {name: value for value, name in enumerate(TISSUES)}
L = {name: value for value, name in enumerate(LESIONS)}

MODALITY_COLUMNS = ("CT", "MR-T1", "MR-T1c", "MR-T2", "MR-FLAIR")
# name: (CT, T1, T1c, T2, FLAIR) as (mean, texture SD)
_INTENSITY = {
    "air": ((-1000, 4), (0, 0), (0, 0), (0, 0), (0, 0)),
    "skin": ((30, 10), (400, 30), (420, 30), (350, 30), (400, 30)),
    "fat": ((-100, 10), (900, 40), (880, 40), (700, 40), (550, 30)),
    "muscle": ((50, 8), (350, 20), (380, 20), (200, 15), (300, 20)),
    "cortical bone": ((900, 120), (40, 10), (40, 10), (30, 10), (30, 10)),
    "bone marrow": ((250, 50), (700, 60), (720, 60), (450, 40), (400, 40)),
    "lung": ((-850, 40), (20, 10), (25, 10), (25, 10), (20, 10)),
    "lung vessel": ((60, 20), (60, 20), (300, 30), (60, 20), (40, 10)),
    "liver": ((100, 8), (450, 25), (650, 30), (250, 20), (350, 20)),
    "hepatic vessel": ((170, 10), (80, 20), (850, 40), (100, 20), (80, 20)),
    "kidney": ((170, 15), (380, 30), (750, 40), (550, 30), (450, 30)),
    "spleen": ((110, 8), (330, 20), (600, 30), (500, 30), (450, 30)),
    "pancreas": ((90, 10), (480, 30), (620, 30), (350, 25), (380, 25)),
    "colon wall": ((60, 10), (350, 30), (500, 30), (300, 25), (300, 25)),
    "colon lumen": ((-900, 50), (30, 10), (30, 10), (50, 10), (30, 10)),
    "bladder": ((5, 5), (100, 10), (110, 10), (1000, 30), (80, 10)),
    "blood": ((160, 10), (120, 20), (850, 40), (150, 20), (100, 20)),
    "csf": ((8, 4), (150, 15), (150, 15), (1000, 30), (80, 10)),
    "gray matter": ((40, 4), (450, 20), (460, 20), (450, 20), (550, 20)),
    "white matter": ((30, 4), (650, 20), (660, 20), (300, 15), (400, 20)),
    "ventricle": ((8, 4), (150, 15), (150, 15), (1000, 30), (80, 10)),
    "hypodense lesion": ((45, 12), (300, 30), (400, 40), (500, 40), (550, 40)),
    "hyperdense lesion": ((150, 15), (420, 30), (800, 50), (450, 40), (500, 40)),
    "solid tumor": ((45, 12), (380, 30), (600, 40), (480, 40), (600, 40)),
    "heterogeneous tumor": ((110, 35), (380, 60), (650, 80), (520, 80), (600, 60)),
    "cyst": ((8, 4), (120, 10), (120, 10), (950, 30), (100, 10)),
    "necrosis": ((20, 8), (250, 30), (250, 30), (850, 40), (350, 40)),
    "enhancing rim": ((110, 12), (480, 30), (850, 40), (600, 40), (650, 40)),
    "edema": ((25, 5), (480, 25), (480, 25), (750, 30), (900, 30)),
    "lytic lesion": ((40, 20), (350, 30), (550, 40), (650, 40), (550, 40)),
    "sclerotic lesion": ((1100, 150), (40, 10), (40, 10), (40, 10), (40, 10)),
}


def lookup_tables(modality: str) -> tuple[np.ndarray, np.ndarray]:
    """(mean, texture SD) as 256-entry float32 tables indexed by the combined label (tissue, or 100 + lesion)."""
    column = MODALITY_COLUMNS.index(modality)
    mean = np.zeros(256, dtype=np.float32)
    sd = np.zeros(256, dtype=np.float32)
    for value, name in [*enumerate(TISSUES), *((LESION_OFFSET + v, n) for v, n in enumerate(LESIONS) if v)]:
        mean[value], sd[value] = _INTENSITY[name][column]
    return mean, sd


def label_legend() -> dict[int, str]:
    """Every value of a phantom's *_labels.nii.gz and what it is."""
    return {**dict(enumerate(TISSUES)), **{LESION_OFFSET + v: n for v, n in enumerate(LESIONS) if v}}
