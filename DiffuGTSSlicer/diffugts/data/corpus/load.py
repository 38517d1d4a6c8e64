"""Read one SourceRow as RAS volumes: the image, its 0/1 tumor mask and its organ map, all on one grid."""

from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import DiffuGTSError, InputError
from ...io import Volume, guess_modality, read_grid, read_volume, to_ras
from ..case import GEOMETRY_TOLERANCE_MM
from .organs import to_vocabulary
from .sources import SourceRow


@dataclass
class LoadedRow:
    image: Volume  # reoriented to RAS (axis permutation and flips only)
    mask: Volume | None
    organs: Volume | None
    modality: str
    notes: list[str] = field(default_factory=list)


def load_row(row: SourceRow) -> LoadedRow:
    """The row's volumes in RAS; a bad image or tumor mask raises (the case is left out), a bad organ map
    is dropped with a note (the image is still usable)."""
    images, mask = row.case.load()
    image = next(iter(images.values()))
    modality = row.modality or guess_modality(image.array, path=str(row.image))[0]
    notes: list[str] = []
    organs = None
    if row.organs is not None and row.legend is not None:
        try:
            organs = _organ_map(row, image, notes)
        except DiffuGTSError as error:
            notes.append(f"organ map left out: {error}")
    return LoadedRow(to_ras(image)[0], to_ras(mask)[0] if mask is not None else None,
                     to_ras(organs)[0] if organs is not None else None, modality, notes)


def _organ_map(row: SourceRow, image: Volume, notes: list[str]) -> Volume | None:
    grid = read_grid(row.organs)
    if not grid.matches(image.grid, GEOMETRY_TOLERANCE_MM):
        raise InputError("organ map lies on another grid than its image", path=row.organs,
                         hint="Resample it onto the image (nearest neighbour).")
    labels, dropped = to_vocabulary(read_volume(row.organs).array, row.legend)
    notes.extend(dropped)
    if not labels.any():
        notes.append("organ map holds no organ of the vocabulary: left out")
        return None
    return image.like(labels, modality="labels")
