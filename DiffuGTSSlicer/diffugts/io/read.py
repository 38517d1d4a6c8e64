"""Read NIfTI, NRRD, MetaImage and DICOM series into a validated Volume, or explain why not."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..memory import budget_bytes, format_bytes
from .itk_messages import captured_itk_messages
from .modality import guess_modality
from .dicom_read import find_dicom_series
from .nifti_header import HEADER_BYTES, open_nifti, parse_nifti_header
from .safe_write import compound_suffix, register_input
from .volume import Grid, Volume

IMAGE_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
SPACING_RANGE_MM = (0.01, 100.0)
ORTHONORMAL_TOLERANCE = 1e-3
_CONVERT_HINT = "Convert it to NIfTI (.nii.gz) or NRRD, for example with 3D Slicer's Save dialog."
_NIFTI_SUFFIXES = (".nii", ".nii.gz")


def read_volume(path: str | Path, *, channel: int | None = None, name_hint: bool = True) -> Volume:
    """Read one image file or a DICOM series folder; every problem raises an InputError naming the file.

    ``channel`` picks one volume of a 4D file (for example one MR sequence of an MSD brain-tumour image).
    ``name_hint=False``: the file name is not the user's (a server's random upload name, where 'adc' can
    appear by chance), so the modality is guessed from the DICOM tag or the intensities only.
    What ITK prints while reading becomes one-line warnings on the volume (or nothing, when reading fails).
    """
    path = Path(path)
    with captured_itk_messages() as itk:
        volume, files = _read(path, channel, name_hint)
    volume.warnings.extend(_itk_warnings(path, itk.lines()))
    for file in files:
        register_input(file)
    register_input(path)
    return volume


def _read(path: Path, channel: int | None, name_hint: bool) -> tuple[Volume, list[Path]]:
    """The validated volume at ``path`` and the files it was read from."""
    if not path.exists():
        raise InputError("file or folder does not exist", path=path, hint="Check the path and its spelling.")
    if path.is_dir():
        if channel is not None:
            raise InputError("a DICOM series folder has no channels", path=path)
        image, files, (dicom_modality, dicom_sequence), warnings, series_uid = _read_dicom_folder(path)
    else:
        _check_suffix(path)
        image = _read_file(path, channel)
        files, dicom_modality, dicom_sequence, warnings, series_uid = [path], None, None, [], None
    volume = _to_volume(image, path, channel or 0)
    volume.warnings.extend(warnings)
    if series_uid is not None:  # the DICOM SEG export references this series (and says when it cannot)
        volume.metadata["dicom_series_uid"] = series_uid
    modality, reason = guess_modality(volume.array, path=str(path) if name_hint else None,
                                      dicom_modality=dicom_modality, dicom_sequence=dicom_sequence)
    volume.modality = modality
    volume.metadata["modality_reason"] = reason
    return volume, files


def _itk_warnings(path: Path, messages: list[str]) -> list[str]:
    """ITK's messages as volume warnings naming the file, at most three and a count of the rest."""
    shown = [f"{path}: ITK: {m.replace(str(path), 'the file')}" for m in messages[:3]]
    if len(messages) > 3:
        shown.append(f"{path}: ITK printed {len(messages) - 3} more messages while reading it.")
    return shown


def _check_suffix(path: Path) -> None:
    suffix = compound_suffix(path)
    if suffix in IMAGE_SUFFIXES:
        return
    if suffix in (".dcm", ".ima") or suffix == "":
        hint = "For DICOM, pass the folder that holds the series, not a single file."
    else:
        hint = f"Supported: {', '.join(IMAGE_SUFFIXES)} files and DICOM series folders. {_CONVERT_HINT}"
    raise InputError(f"unsupported file type {suffix or '(no extension)'!r}", path=path, hint=hint)


def _header(path: Path) -> sitk.ImageFileReader:
    """A reader that has read the file's header, or an InputError."""
    if compound_suffix(path) in _NIFTI_SUFFIXES:
        _check_nifti_header(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        raise InputError(
            "cannot read the image header: the file is corrupt or not the format its extension says",
            path=path,
            hint="Re-export or re-download the file.",
        ) from None
    return reader


def read_grid(path: str | Path) -> Grid:
    """The voxel grid a file's header declares (the first three axes of a 4D file), without reading voxels.

    A 2D image gets the one-slice grid that :func:`read_volume` gives it.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("file does not exist", path=path, hint="Check the path and its spelling.")
    with captured_itk_messages():  # a Grid has no warnings; what ITK says about a header that it read is dropped
        reader = _header(path)
    dimension, axes = reader.GetDimension(), min(reader.GetDimension(), 3)
    direction = np.eye(3)
    direction[:axes, :axes] = np.asarray(reader.GetDirection(), dtype=float).reshape(dimension, dimension)[:axes, :axes]
    pad = 3 - axes
    size = tuple(reader.GetSize()[:axes]) + (1,) * pad
    spacing = tuple(reader.GetSpacing()[:axes]) + (1.0,) * pad
    origin = tuple(reader.GetOrigin()[:axes]) + (0.0,) * pad
    return Grid(size, spacing, origin, tuple(direction.ravel().tolist()))


def read_bytes(path: str | Path) -> int:
    """Peak bytes that reading the image file takes (ITK's image and its array copy), from its header alone."""
    path = Path(path)
    with captured_itk_messages():
        reader = _header(path)
    return _reading_bytes(reader.GetSize(), reader.GetNumberOfComponents(), reader.GetPixelID())


def _reading_bytes(size: tuple[int, ...], components: int, pixel_id: int) -> int:
    """ITK's image and its array copy (a 4D file is read whole before one channel is kept)."""
    return 2 * int(np.prod(size, dtype=np.int64)) * components * _itemsize(pixel_id)


def _read_file(path: Path, channel: int | None) -> sitk.Image:
    reader = _header(path)
    _check_header(path, reader.GetDimension(), reader.GetSize(), reader.GetNumberOfComponents(), reader.GetPixelID(),
                  channel)
    if compound_suffix(path) in _NIFTI_SUFFIXES:
        _check_nifti_length(path, reader.GetSize(), reader.GetPixelID())
    try:
        return reader.Execute()
    except RuntimeError:
        raise InputError(
            "cannot read the voxel data: the file is truncated or corrupt",
            path=path,
            hint="Re-export or re-download the file; check that the copy finished.",
        ) from None


def _read_dicom_folder(folder: Path) -> tuple[sitk.Image, list[Path], tuple, list[str], str]:
    """A DICOM folder's volume (see io.dicom_read), checked against the memory budget before its voxels are read;
    the header's (modality, MR sequence and why) come third."""
    series = find_dicom_series(folder)
    _check_header(folder, 3, series.size, series.stack.samples, series.pixel_id, None)
    return (series.read(), series.files, (series.stack.modality, series.stack.sequence), series.warnings,
            series.stack.series_uid)


def _check_nifti_length(path: Path, size: tuple[int, ...], pixel_id: int) -> None:
    """ITK reads a truncated NIfTI (even gzipped) without complaint, padding it; check the length ourselves.

    For .nii.gz the gzip trailer's ISIZE (uncompressed length mod 2**32) settles it in O(1); only when it
    disagrees (truncation, a multi-member gzip, or data after the voxels) is the stream decompressed and
    counted, and only up to the header's byte count: a small upload whose header names few voxels but whose
    stream inflates to gigabytes costs no more than its header says.
    """
    itemsize = _itemsize(pixel_id)
    truncated = InputError(
        "file is truncated: it holds fewer voxels than its header says",
        path=path,
        hint="Re-export or re-download the file; check that the copy finished.",
    )
    gzipped = compound_suffix(path) == ".nii.gz"
    try:
        with open_nifti(path) as stream:
            raw = stream.read(HEADER_BYTES)
            header = parse_nifti_header(raw)
            if header is None:
                raise truncated
            stored = header.bitpix // 8 or itemsize  # ITK reports a scaled (scl_slope) file's pixels as float
            expected = header.vox_offset + int(np.prod(size, dtype=np.int64)) * stored
            if not gzipped:
                length = path.stat().st_size
            elif _gzip_isize(path) == expected % 2**32:
                return
            else:
                length = len(raw)
                while length < expected and (chunk := stream.read(min(1 << 22, expected - length))):
                    length += len(chunk)
    except (EOFError, OSError, zlib.error, struct.error):
        raise truncated from None
    if length < expected:
        raise truncated


def _check_nifti_header(path: Path) -> None:
    """Refuse NIfTI-2 (ITK reads NIfTI-1 only) and a sheared sform, which ITK would silently swap for the qform
    (or refuse with a vague error), each with a clear message.

    The qform is a rotation by construction, so only the sform (used when sform_code > 0) can be skewed.
    Its columns are divided by their lengths (the voxel spacing it implies) before the orthonormality check;
    a length that differs from pixdim is ITK's "unexpected scales" warning, not an error. An unreadable
    header is left for ITK to report.
    """
    try:
        with open_nifti(path) as stream:
            header = parse_nifti_header(stream.read(HEADER_BYTES))
    except (EOFError, OSError, zlib.error):
        return
    if header is None:
        return
    if header.version == 2:
        raise InputError("NIfTI-2 files cannot be read (the ITK library that reads images reads NIfTI-1 only)",
                         path=path, hint="Convert it to NIfTI-1 or NRRD, for example with nibabel.")
    if header.sform_code <= 0:
        return
    axes = header.sform[:, :3]
    lengths = np.linalg.norm(axes, axis=0)
    _check_orthonormal(np.divide(axes, lengths, out=np.zeros_like(axes), where=lengths > 0), path,
                       "direction in the NIfTI sform")


def _check_orthonormal(direction: np.ndarray, path: Path, what: str) -> None:
    """Refuse a direction matrix whose columns are not perpendicular unit vectors."""
    deviation = float(np.abs(direction.T @ direction - np.eye(3)).max())
    if not deviation <= ORTHONORMAL_TOLERANCE:
        raise InputError(
            f"{what} is not orthonormal: the axes are skewed (sheared) or scaled "
            f"(deviation {deviation:.3g}, tolerance {ORTHONORMAL_TOLERANCE:g})",
            path=path,
            hint="Resample it onto an orthogonal grid (for example with 3D Slicer's "
            "'Resample Scalar/Vector/DWI Volume' module) or fix the header, and save a copy.",
        )


def _itemsize(pixel_id: int) -> int:
    """Bytes per voxel of a SimpleITK scalar pixel type."""
    return sitk.GetArrayViewFromImage(sitk.Image([1, 1], pixel_id)).itemsize


def _gzip_isize(path: Path) -> int:
    """The uncompressed length recorded in a gzip file's last four bytes."""
    with open(path, "rb") as handle:
        handle.seek(-4, 2)
        return struct.unpack("<I", handle.read(4))[0]


def _check_header(path: Path, dimension: int, size: tuple[int, ...], components: int, pixel_id: int,
                  channel: int | None) -> None:
    if components != 1:
        raise InputError(
            f"image has {components} values per voxel (colour or vector image); a scalar image is needed",
            path=path,
            hint="Extract one channel or convert to grayscale first.",
        )
    if channel is not None and (dimension != 4 or not 0 <= channel < size[3]):
        volumes = size[3] if dimension == 4 else 1
        raise InputError(f"has no channel {channel} (it holds {volumes} volume{'s' * (volumes > 1)})", path=path,
                         hint="Channels count from 0; check the dataset's description of this file.")
    if dimension == 4 and size[3] > 1 and channel is None:
        raise InputError(
            f"4D image with {size[3]} volumes (size {'x'.join(map(str, size))}); one 3D volume is needed",
            path=path,
            hint="Extract the volume you want (for example one MR sequence or time point) and pass that file.",
        )
    if dimension not in (2, 3, 4):
        raise InputError(f"{dimension}D image; a 2D or 3D image is needed", path=path)
    if any(s == 0 for s in size):
        raise InputError(
            f"image has a zero-length axis (size {'x'.join(map(str, size))})",
            path=path,
            hint="The file holds no voxels; re-export it.",
        )
    needed, budget = _reading_bytes(size, components, pixel_id), budget_bytes()
    if needed > budget:
        raise InputError(
            f"reading this volume of {'x'.join(map(str, size[:3]))} voxels needs about {format_bytes(needed)}, "
            f"more than the memory budget of {format_bytes(budget)}",
            path=path,
            hint="Crop it to the region of interest or downsample it (for example in 3D Slicer), "
            "or raise the budget with DIFFUGTS_MEMORY_BUDGET_GB on a machine with more memory.",
        )


def check_finite(array: np.ndarray, path: str | Path | None) -> None:
    """Refuse NaN and infinite voxels, saying how many of each."""
    if not np.issubdtype(array.dtype, np.floating):
        return
    nan = int(np.count_nonzero(np.isnan(array)))
    infinite = int(np.count_nonzero(np.isinf(array)))
    if nan or infinite:
        raise InputError(
            f"{nan + infinite} voxels are NaN or infinite ({nan} NaN, {infinite} infinite)",
            path=path,
            hint="Replace them (for example with the background value) and save a copy.",
        )


def _to_volume(image: sitk.Image, path: Path, channel: int) -> Volume:
    source_ndim = image.GetDimension()
    if source_ndim == 4:
        image = image[:, :, :, channel]
    if source_ndim == 2:
        image = sitk.JoinSeries(image)
    spacing = image.GetSpacing()
    low, high = SPACING_RANGE_MM
    if not all(low <= s <= high for s in spacing):
        raise InputError(
            f"implausible voxel spacing {' x '.join(f'{s:g}' for s in spacing)} mm (expected {low:g} to {high:g} mm)",
            path=path,
            hint="The header is probably wrong; fix the spacing (for example in Slicer's Volume Information) "
            "and save a copy.",
        )
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    _check_orthonormal(direction, path, "direction matrix")
    array = sitk.GetArrayFromImage(image)
    check_finite(array, path)
    return Volume(
        array=array,
        spacing=spacing,
        origin=image.GetOrigin(),
        direction=direction,
        source=str(path),
        source_ndim=min(source_ndim, 3),
    )
