"""Dataset readers: every public layout gives the same Case records (see diffugts.data.case.Case)."""

from __future__ import annotations

from pathlib import Path

from ...errors import InputError
from ..case import Case
from .brats import brats_case_files, read_brats
from .kits import kits_case_folders, read_kits
from .manifest import read_manifest
from .msd import read_msd

LAYOUTS = ("manifest", "msd", "kits23", "brats")


def detect_layout(path: str | Path) -> str:
    """Which layout a path holds: a .csv manifest, an MSD task, a KiTS23 download or a BraTS folder."""
    path = Path(path)
    if not path.exists():
        raise InputError("does not exist", path=path, hint="Check the path.")
    if path.is_file():
        if path.suffix.lower() == ".csv":
            return "manifest"
        raise InputError("is a file but not a .csv manifest", path=path,
                         hint="Pass a manifest.csv or a dataset folder (MSD task, KiTS23, BraTS).")
    if (path / "dataset.json").is_file():
        return "msd"
    if (path / "manifest.csv").is_file():
        return "manifest"
    if kits_case_folders(path):
        return "kits23"
    if any(p.is_dir() and brats_case_files(p) for p in path.iterdir()):
        return "brats"
    raise InputError("is not a known dataset layout", path=path,
                     hint="Expected a manifest.csv, an MSD task folder (dataset.json), a KiTS23 download "
                          "(case_XXXXX/imaging.nii.gz) or a BraTS folder (one folder per case).")


def read_dataset(path: str | Path, layout: str | None = None) -> list[Case]:
    """All cases of a dataset, its layout detected unless given."""
    path = Path(path)
    layout = layout or detect_layout(path)
    if layout == "manifest":
        return read_manifest(path / "manifest.csv" if path.is_dir() else path)
    readers = {"msd": read_msd, "kits23": read_kits, "brats": read_brats}
    if layout not in readers:
        raise InputError(f"unknown layout {layout!r}", hint=f"Choose one of: {', '.join(LAYOUTS)}.")
    return readers[layout](path)


__all__ = ["LAYOUTS", "Case", "detect_layout", "read_brats", "read_dataset", "read_kits", "read_manifest", "read_msd"]
