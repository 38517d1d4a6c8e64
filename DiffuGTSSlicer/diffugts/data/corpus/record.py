"""The corpus folder's tables (corpus.csv, excluded.csv) and reading them back as CorpusCase records."""

from __future__ import annotations

import csv
from dataclasses import dataclass, fields
from pathlib import Path

from ...errors import InputError
from ...io import Volume, read_volume

CORPUS_COLUMNS = ("case_id", "patient", "split", "image", "modality", "body_region", "tumor", "tumor_mask",
                  "tumor_prompt", "organs", "source_dataset", "source_file", "licence", "licence_class", "sha256",
                  "size_xyz", "spacing_xyz", "notes")
EXCLUDED_COLUMNS = ("case_id", "source_dataset", "source_file", "licence", "reason")
CORPUS_CSV, EXCLUDED_CSV, CORPUS_JSON = "corpus.csv", "excluded.csv", "corpus.json"
_PATHS = ("image", "tumor_mask", "organs")


@dataclass(frozen=True)
class CorpusCase:
    """One row of corpus.csv; image, tumor_mask and organs are absolute paths (None when the cell is empty)."""

    case_id: str
    patient: str
    split: str  # "train" or "validation"
    image: Path
    modality: str  # "CT", "MR-T1", "MR-T1c", "MR-T2", "MR-FLAIR" or "MR"
    body_region: str
    tumor: str  # "yes", "no" or "unknown"
    tumor_mask: Path | None
    tumor_prompt: str
    organs: Path | None
    source_dataset: str
    source_file: str
    licence: str
    licence_class: str  # "permissive", "non-commercial" or "unknown"
    sha256: str
    size_xyz: str
    spacing_xyz: str
    notes: str

    def load_image(self) -> Volume:
        volume = read_volume(self.image)
        volume.modality = self.modality
        return volume

    def load_organs(self) -> Volume | None:
        """The organ label map (diffugts.organs.labels values) on the image's grid, or None."""
        return read_volume(self.organs) if self.organs else None

    def load_tumor(self) -> Volume | None:
        """The 0/1 tumor mask on the image's grid, or None."""
        return read_volume(self.tumor_mask) if self.tumor_mask else None


def read_corpus(folder: str | Path) -> list[CorpusCase]:
    """Every case of a corpus folder written by ``diffugts data corpus``."""
    folder = Path(folder)
    path = folder / CORPUS_CSV
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = tuple(reader.fieldnames or ())
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"cannot read the corpus table ({error})", path=path,
                         hint="Point at a folder written by 'diffugts data corpus --out DIR ...'.") from None
    if header != CORPUS_COLUMNS:
        raise InputError("is not a corpus table (its columns differ)", path=path,
                         hint="Rebuild the corpus with 'diffugts data corpus'.")
    return [CorpusCase(**{f.name: _value(f.name, row[f.name], folder) for f in fields(CorpusCase)}) for row in rows]


def _value(name: str, text: str, folder: Path) -> Path | str | None:
    if name not in _PATHS:
        return text
    return (folder / text).resolve() if text else None


@dataclass(frozen=True)
class Exclusion:
    """One row of excluded.csv: a case left out of the corpus, and why."""

    case_id: str
    source_dataset: str
    source_file: str
    licence: str
    reason: str

    def row(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in EXCLUDED_COLUMNS}
