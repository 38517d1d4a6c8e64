"""The case record every dataset reader yields, and loading it with its checks (files, geometry, labels)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..io import Grid, Volume, read_volume, register_input
from ..io.read import _to_volume

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

    @property
    def image(self) -> ImageRef:
        return next(iter(self.images.values()))

    def files(self) -> list[Path]:
        return [ref.path for ref in self.images.values()] + ([self.mask] if self.mask else [])

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
        reference = header_grid(reference_path)
        for path in self.files()[1:]:
            grid = header_grid(path)
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
        four_d: dict[Path, sitk.Image] = {}  # a 4D file (MSD brain tumour) is read once for all its channels
        images = {name: _read_image(ref, name, four_d) for name, ref in self.images.items()}
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


def header_grid(path: Path) -> Grid:
    """The voxel grid in a file's header (the first three axes of a 4D file)."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        raise InputError("cannot read the image header: the file is corrupt or not an image", path=path,
                         hint="Re-download or re-export the file.") from None
    dimension = reader.GetDimension()
    direction = np.eye(3)
    axes = min(dimension, 3)
    direction[:axes, :axes] = np.asarray(reader.GetDirection(), dtype=float).reshape(dimension, dimension)[:axes, :axes]
    size = tuple(reader.GetSize()[:3]) + (1,) * max(0, 3 - dimension)
    spacing = tuple(reader.GetSpacing()[:3]) + (1.0,) * max(0, 3 - dimension)
    origin = tuple(reader.GetOrigin()[:3]) + (0.0,) * max(0, 3 - dimension)
    return Grid(size, spacing, origin, tuple(direction.ravel().tolist()))


def _read_image(ref: ImageRef, name: str, four_d: dict[Path, sitk.Image]) -> Volume:
    if ref.channel is None:
        volume = read_volume(ref.path)
    else:
        if ref.path not in four_d:
            four_d[ref.path] = sitk.ReadImage(str(ref.path))
        image = four_d[ref.path]
        if image.GetDimension() != 4 or ref.channel >= image.GetSize()[3]:
            raise InputError(f"has no channel {ref.channel} (size {image.GetSize()})", path=ref.path,
                             hint="The dataset's description does not match this file; re-download it.")
        volume = _to_volume(image[:, :, :, ref.channel], ref.path)
        register_input(ref.path)
    volume.modality = name
    return volume


def _rounded(values: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(round(v, 4) for v in values)
