"""Read a DICOM folder as scanners write it: a classic series (slices decoded by GDCM through SimpleITK, so
every compressed transfer syntax ITK knows works) or an enhanced multi-frame CT/MR (pydicom, per-frame
rescale), placed on the grid dicom_geometry computes, gantry tilt undone."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from .dicom_geometry import StackGrid, stack_grid, tilt_warning, untilt
from .dicom_scan import DicomStack, scan_folder

_CORRUPT_HINT = "Re-export the series; check that the copy finished."


@dataclass
class DicomSeries:
    """A series found and checked from its headers; :meth:`read` decodes its voxels."""

    stack: DicomStack
    grid: StackGrid

    @property
    def size(self) -> tuple[int, int, int]:
        return (self.stack.columns, self.stack.rows + self.grid.pad, len(self.grid.order))

    @property
    def pixel_id(self) -> int:
        """The SimpleITK pixel type the volume will have (for the memory check before reading)."""
        integral = np.all(self.stack.slopes == 1) and np.all(self.stack.intercepts == np.round(self.stack.intercepts))
        return (sitk.sitkInt16 if self.stack.bits <= 16 else sitk.sitkInt32) if integral else sitk.sitkFloat32

    @property
    def files(self) -> list[Path]:
        return sorted(set(self.stack.files))

    @property
    def warnings(self) -> list[str]:
        tilt = [tilt_warning(self.stack.folder, self.grid)] if self.grid.tilted else []
        return self.stack.warnings + tilt

    def read(self) -> sitk.Image:
        array = self._read_multiframe() if self.stack.multiframe else self._read_slices()
        image = sitk.GetImageFromArray(untilt(array, self.grid))
        image.SetOrigin(tuple(float(v) for v in self.grid.origin))
        image.SetSpacing(tuple(float(v) for v in self.grid.spacing))
        image.SetDirection(tuple(float(v) for v in self.grid.direction.ravel()))
        return image

    def _read_slices(self) -> np.ndarray:
        """[k, j, i] from one file per slice, in slice order, values rescaled by GDCM."""
        volume = None
        for k, frame in enumerate(self.grid.order):
            plane = self._read_slice(self.stack.files[frame])
            if volume is None:
                volume = np.empty((len(self.grid.order), *plane.shape), plane.dtype)
            elif np.result_type(volume, plane) != volume.dtype:
                volume = volume.astype(np.result_type(volume, plane))
            volume[k] = plane
        return volume

    def _read_slice(self, path: Path) -> np.ndarray:
        try:
            image = sitk.ReadImage(str(path))
        except RuntimeError:
            raise InputError("cannot read the pixel data of this slice: the file is truncated or corrupt",
                             path=path, hint=_CORRUPT_HINT) from None
        plane = sitk.GetArrayFromImage(image)
        if plane.size != self.stack.rows * self.stack.columns:
            raise InputError(f"slice holds {plane.size} pixels, not the {self.stack.rows}x{self.stack.columns} "
                             "its header says", path=path, hint=_CORRUPT_HINT)
        return plane.reshape(self.stack.rows, self.stack.columns)

    def _read_multiframe(self) -> np.ndarray:
        """[k, j, i] from an enhanced multi-frame file, each frame rescaled with its own slope and intercept."""
        import pydicom

        path = self.stack.files[0]
        try:
            frames = pydicom.dcmread(path).pixel_array
        except Exception as error:  # noqa: BLE001 - a missing decoder or damaged data, said in one line
            raise InputError(f"cannot decode the multi-frame pixel data ({type(error).__name__}: {error})",
                             path=path, hint="Convert it to uncompressed DICOM or NIfTI (e.g. with dcm2niix), "
                             "or install the decoder pydicom names.") from None
        frames = frames.reshape(-1, self.stack.rows, self.stack.columns)[self.grid.order]
        slopes, intercepts = self.stack.slopes[self.grid.order], self.stack.intercepts[self.grid.order]
        if self.pixel_id == sitk.sitkFloat32:
            return frames.astype(np.float32) * slopes[:, None, None].astype(np.float32) + intercepts[:, None, None]
        dtype = np.int16 if self.pixel_id == sitk.sitkInt16 else np.int32
        shifted = frames.astype(np.int64) + intercepts.astype(np.int64)[:, None, None]
        info = np.iinfo(dtype)
        if shifted.min() < info.min or shifted.max() > info.max:
            return shifted.astype(np.int32 if dtype == np.int16 else np.float64)
        return shifted.astype(dtype)


def find_dicom_series(folder: Path) -> DicomSeries:
    """The volume's series in ``folder`` with its grid, checked from the headers alone (no voxels read)."""
    stack = scan_folder(folder)
    names = [f"{path.name} frame {n + 1}" if stack.multiframe else path.name
             for path, n in zip(stack.files, stack.frame_index)]
    grid = stack_grid(stack.positions, stack.row, stack.column, stack.spacing, stack.thickness, names, folder)
    return DicomSeries(stack, grid)
