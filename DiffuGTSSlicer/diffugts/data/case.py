"""The case record every dataset reader yields, and loading it with its checks (files, geometry, labels)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import Volume, read_grid, read_volume

GEOMETRY_TOLERANCE_MM = 1e-3


@dataclass(frozen=True)
class ImageRef:
    """One image of a case: a file, or one channel of a 4D file (MSD brain tumour)."""

    path: Path
    channel: int | None = None


@dataclass(frozen=True)
class Case:
    """One case, whatever layout it came from: images by name, the tumor mask, and what to prompt for."""

    case_id: str
    dataset: str  # "manifest", "msd:Task03_Liver", "kits23", "brats", ...
    images: dict[str, ImageRef]  # name ("CT", "MR-FLAIR", ...) -> image; the first is the primary one
    mask: Path | None  # label file, or None when the case has no annotation
    tumor_labels: tuple[int, ...]  # mask values that are the tumor
    known_labels: dict[int, str]  # every value the label file may hold, with its meaning
    prompt: str
    modality: str  # of the primary image: "CT", "MR-T1c", ...
    organ: str
    category: str | None  # a key of diffugts.data.CATEGORIES, or None for free text
    licence: str = ""
    notes: dict[str, str] = field(default_factory=dict)
    organ_mask: Path | None = None  # the organ to search in (uint8 0/1 on the image's grid), when the dataset has it

    @property
    def image(self) -> ImageRef:
        return next(iter(self.images.values()))

    def files(self) -> list[Path]:
        return [ref.path for ref in self.images.values()] + [p for p in (self.mask, self.organ_mask) if p]

    def check_files(self) -> None:
        """Raise an InputError naming the case and the first missing file."""
        for path in self.files():
            if not path.is_file():
                raise InputError(f"{self.dataset} case {self.case_id}: file is missing", path=path,
                                 hint="Check that the download or copy is complete.")

    def check_geometry(self) -> None:
        """Compare the headers of every image and the mask with the primary image (cheap: no voxels read)."""
        self.check_files()
        reference_path = self.image.path
        reference = read_grid(reference_path)
        for path in self.files()[1:]:
            grid = read_grid(path)
            if not grid.matches(reference, GEOMETRY_TOLERANCE_MM):
                raise InputError(
                    f"{self.dataset} case {self.case_id}: grid differs from {reference_path.name} "
                    f"(size {grid.size} vs {reference.size}, spacing {_rounded(grid.spacing)} vs "
                    f"{_rounded(reference.spacing)}, origin {_rounded(grid.origin)} vs {_rounded(reference.origin)})",
                    path=path, hint="The label and image must lie on the same voxel grid; resample the label "
                                    "onto the image (nearest neighbour) or fix its header.")

    def load(self) -> tuple[dict[str, Volume], Volume | None]:
        """The images and the binary (0/1 uint8) tumor mask on the primary image's grid, all checked."""
        self.check_geometry()
        images = {name: _read_image(ref, name) for name, ref in self.images.items()}
        if self.mask is None:
            return images, None
        labels = read_volume(self.mask)
        values = {int(v) for v in np.unique(labels.array)}
        unknown = sorted(values - set(self.known_labels) - {0})
        if unknown:
            known = ", ".join(f"{v}={name}" for v, name in sorted(self.known_labels.items()))
            raise InputError(f"{self.dataset} case {self.case_id}: label values {unknown} are unknown "
                             f"(expected {known})", path=self.mask,
                             hint="Check that this is the right label file for this dataset, "
                                  "or map the extra values to known ones.")
        primary = images[next(iter(images))]
        mask = np.isin(labels.array, self.tumor_labels).astype(np.uint8)
        return images, primary.like(mask, modality="mask")


def _read_image(ref: ImageRef, name: str) -> Volume:
    volume = read_volume(ref.path, channel=ref.channel)
    volume.modality = name
    return volume


def _rounded(values: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(round(v, 4) for v in values)
