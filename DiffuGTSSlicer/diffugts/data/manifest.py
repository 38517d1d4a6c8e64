"""The CSV manifest schema shared by the developers' real data and generated phantom sets."""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path

from ..errors import InputError
from ..io import write_csv

MANIFEST_COLUMNS = ("case_id", "image", "mask", "modality", "body_region", "tumor_prompt", "mask_labels",
                    "size_xyz", "spacing_xyz", "source", "licence", "notes")
ORGAN_MASK_COLUMN = "organ_mask"  # optional: the organ (uint8 0/1 on the image's grid) that evaluation searches in
_LABEL_VALUE = re.compile(r"(?:^|[,;]\s*)(\d+)\s*=")


def read_manifest_rows(path: str | Path) -> list[dict[str, str]]:
    """The rows of a manifest, after checking it has every column."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or [])]
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"cannot read the manifest ({error})", path=path,
                         hint="It must be a UTF-8 CSV file with a header row.") from None
    if missing:
        raise InputError(f"manifest lacks the column(s) {', '.join(missing)}", path=path,
                         hint=f"The header must name: {','.join(MANIFEST_COLUMNS)}.")
    return rows


def tumor_label_values(mask_labels: str) -> tuple[int, ...]:
    """The mask values named in a mask_labels cell: "1=tumor" -> (1,); "none (...)" -> ()."""
    return tuple(int(value) for value in _LABEL_VALUE.findall(mask_labels.strip()))


def write_manifest(rows: Sequence[dict[str, str]], path: str | Path, organ_masks: bool = False) -> Path:
    """Write rows with exactly the manifest columns (plus ``organ_mask`` when asked), atomically."""
    return write_csv(path, (*MANIFEST_COLUMNS, ORGAN_MASK_COLUMN) if organ_masks else MANIFEST_COLUMNS, rows)
