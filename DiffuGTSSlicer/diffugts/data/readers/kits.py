"""Cases from KiTS23 (case_XXXXX/imaging.nii.gz and segmentation.nii.gz; 1 kidney, 2 tumor, 3 cyst)."""

from __future__ import annotations

from pathlib import Path

from ...errors import InputError
from ..case import Case, ImageRef
from ..categories import CATEGORIES

KITS_LABELS = {1: "kidney", 2: "tumor", 3: "cyst"}
KITS_TARGETS = {"kidney tumor": (2,), "kidney cyst": (3,)}


def kits_case_folders(folder: Path) -> list[Path]:
    """The case_XXXXX folders of a KiTS23 download (the repository root, or its dataset/ folder)."""
    root = folder / "dataset" if (folder / "dataset").is_dir() else folder
    return sorted(p for p in root.glob("case_*") if p.is_dir())


def read_kits(folder: str | Path, target: str = "kidney tumor") -> list[Case]:
    """Every case; ``target`` picks the tumor: "kidney tumor" (label 2) or "kidney cyst" (label 3)."""
    folder = Path(folder)
    if target not in KITS_TARGETS:
        raise InputError(f"KiTS23 has no {target!r} label", hint=f"Choose {' or '.join(KITS_TARGETS)}.")
    case_folders = kits_case_folders(folder)
    if not case_folders:
        raise InputError("no case_XXXXX folders found", path=folder,
                         hint="Point at the KiTS23 repository or its dataset/ folder.")
    category = CATEGORIES[target]
    cases = []
    for case_folder in case_folders:
        case = Case(case_folder.name, "kits23", {"CT": ImageRef(case_folder / "imaging.nii.gz")},
                    case_folder / "segmentation.nii.gz", KITS_TARGETS[target], KITS_LABELS, category.name, "CT",
                    category.organ, category.name, "CC BY-NC-SA 4.0 (KiTS23)")
        case.check_files()
        cases.append(case)
    return cases
