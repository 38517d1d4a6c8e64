"""Cases from BraTS: one folder per case with t1, t1ce (or t1c), t2, flair and seg NIfTI files.

Both namings are read: BraTS 2018-2021 (``BraTS2021_00000_t1ce.nii.gz``, ``_flair``, ``_seg``) and
BraTS 2023 (``BraTS-GLI-00000-000-t1c.nii.gz``, ``-t1n``, ``-t2w``, ``-t2f``, ``-seg``).
"""

from __future__ import annotations

import re
from pathlib import Path

from ...errors import InputError
from ..case import Case, ImageRef
from ..categories import CATEGORIES

SEQUENCE_TOKENS = {"flair": "MR-FLAIR", "t2f": "MR-FLAIR", "t1ce": "MR-T1c", "t1c": "MR-T1c", "t1gd": "MR-T1c",
                   "t1": "MR-T1", "t1n": "MR-T1", "t2": "MR-T2", "t2w": "MR-T2"}
SEQUENCE_ORDER = ("MR-FLAIR", "MR-T1", "MR-T1c", "MR-T2")
# 2013-2020: 1 necrosis/non-enhancing core, 2 edema, 3 non-enhancing (2013 only), 4 enhancing; 2023: 3 enhancing.
BRATS_LABELS = {1: "necrosis / non-enhancing tumor core", 2: "edema", 3: "non-enhancing or enhancing tumor",
                4: "enhancing tumor"}
WHOLE_TUMOR = (1, 2, 3, 4)
_FILE = re.compile(r"[_-]([a-z0-9]+)\.nii(\.gz)?$", re.IGNORECASE)


def brats_case_files(folder: Path) -> dict[str, Path]:
    """The NIfTI files of one case folder by their token (t1, t1ce, flair, seg, ...)."""
    files = {}
    for path in folder.iterdir():
        match = _FILE.search(path.name)
        if match and not path.name.startswith("."):
            files[match.group(1).lower()] = path
    return files


def read_brats(folder: str | Path) -> list[Case]:
    """Every case folder; the mask is the whole tumor (all labels), the primary image FLAIR."""
    folder = Path(folder)
    case_folders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    category = CATEGORIES["brain glioma"]
    cases = []
    for case_folder in case_folders:
        files = brats_case_files(case_folder)
        if not files:
            continue
        sequences = {SEQUENCE_TOKENS[token]: path for token, path in files.items() if token in SEQUENCE_TOKENS}
        missing = [name for name in SEQUENCE_ORDER if name not in sequences]
        if missing or "seg" not in files:
            absent = [n.removeprefix("MR-") for n in missing] + ([] if "seg" in files else ["seg"])
            raise InputError(f"BraTS case {case_folder.name}: no {', '.join(absent)} file", path=case_folder,
                             hint="Each case folder needs t1, t1ce (or t1c), t2, flair and seg .nii.gz files.")
        images = {name: ImageRef(sequences[name]) for name in SEQUENCE_ORDER}
        cases.append(Case(case_folder.name, "brats", images, files["seg"], WHOLE_TUMOR, BRATS_LABELS,
                          category.name, "MR-FLAIR", category.organ, category.name,
                          "BraTS data use terms (non-commercial research)"))
    if not cases:
        raise InputError("no BraTS case folders found", path=folder,
                         hint="Point at the folder that holds one sub-folder per case.")
    return cases
