"""The cases of a batch: every image of a folder, or the rows of a CSV (image, optional case_id, organ_mask, modality)."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..io.read import IMAGE_SUFFIXES
from ..io.safe_write import compound_suffix

CSV_COLUMNS = ("image", "case_id", "organ_mask", "modality")  # only "image" is required
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class BatchCase:
    """One volume to segment; ``case_id`` names its output folder."""

    case_id: str
    image: str
    organ_mask: str | None = None
    modality: str | None = None


def list_cases(source: str | Path, exclude: str | Path | None = None) -> list[BatchCase]:
    """The cases of a folder (recursively, sorted; ``exclude``: a folder to skip, e.g. the output) or of a CSV."""
    source = Path(source)
    if not source.exists():
        raise InputError("the batch input does not exist", path=source,
                         hint="Give a folder of images or a CSV with an 'image' column.")
    cases = _from_folder(source, exclude) if source.is_dir() else _from_csv(source)
    if not cases:
        raise InputError("the batch input holds no image", path=source,
                         hint=f"Images must end in {', '.join(IMAGE_SUFFIXES)} or be DICOM series folders (*.dcm).")
    seen: dict[str, str] = {}
    for case in cases:
        if case.case_id in seen:
            raise InputError(f"two cases have the id {case.case_id!r} ({seen[case.case_id]} and {case.image})",
                             path=source, hint="Give each row a distinct case_id (ids name the output folders).")
        seen[case.case_id] = case.image
    return cases


def case_id_for(name: str) -> str:
    """A folder-safe id: letters, digits, '.', '_' and '-' only; never empty, never hidden."""
    return _UNSAFE.sub("_", name).strip("._") or "case"


def _from_folder(folder: Path, exclude: str | Path | None) -> list[BatchCase]:
    skip = Path(exclude).resolve() if exclude else None
    cases = []
    for path in sorted(folder.rglob("*")):
        if skip is not None and (path.resolve() == skip or skip in path.resolve().parents):
            continue
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        relative = path.relative_to(folder)
        suffix = compound_suffix(path)
        if path.is_file() and suffix in IMAGE_SUFFIXES:
            stem = str(relative)[: -len(suffix)]
        elif path.is_dir() and any(child.suffix.lower() == ".dcm" for child in path.iterdir()):
            stem = str(relative)
        else:
            continue
        cases.append(BatchCase(case_id_for(stem.replace("/", "__")), str(path)))
    return cases


def _from_csv(path: Path) -> list[BatchCase]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            rows = [(reader.line_num, row) for row in reader]  # line numbers as an editor shows them
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"cannot read the batch CSV ({error})", path=path,
                         hint="It must be a UTF-8 CSV file with a header row.") from None
    if "image" not in columns:
        raise InputError("the batch CSV has no 'image' column", path=path,
                         hint=f"Its header may name: {', '.join(CSV_COLUMNS)} (image paths relative to the CSV).")
    cases = []
    for number, row in rows:
        image = (row.get("image") or "").strip()
        if not image:
            raise InputError(f"line {number} has no image", path=path, hint="Every row needs an image path.")
        organ = (row.get("organ_mask") or "").strip()
        case_id = (row.get("case_id") or "").strip() or Path(image).name[: -len(compound_suffix(image)) or None]
        cases.append(BatchCase(case_id_for(case_id), str(_beside(path, image)),
                               str(_beside(path, organ)) if organ else None,
                               (row.get("modality") or "").strip() or None))
    return cases


def _beside(csv_path: Path, name: str) -> Path:
    """A path from a CSV cell: absolute as it is, relative to the CSV's folder otherwise."""
    path = Path(name).expanduser()
    return path if path.is_absolute() else csv_path.parent / path
