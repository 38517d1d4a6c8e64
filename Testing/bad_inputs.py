"""Writers of broken input files, one per failure a user can bring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk


def _mha(path: Path, header: str, n_bytes: int = 96) -> Path:
    path.write_bytes(("ObjectType = Image\nNDims = 3\n" + header + "ElementType = MET_SHORT\n"
                      "ElementDataFile = LOCAL\n").encode() + b"\0" * n_bytes)
    return path


def _write(image: sitk.Image, path: Path) -> Path:
    sitk.WriteImage(image, str(path))
    return path


def _cut(path: Path, image: sitk.Image, keep: float, compress: bool = False) -> Path:
    """Write ``image`` and keep only the first ``keep`` fraction of the file, as an interrupted copy would."""
    sitk.WriteImage(image, str(path), useCompression=compress)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _noise(shape=(20, 30, 30)) -> sitk.Image:
    return sitk.GetImageFromArray(np.random.default_rng(0).integers(0, 1000, shape).astype(np.int16))


def _nan(path: Path) -> Path:
    array = np.zeros((4, 5, 6), np.float32)
    array[1, 2, 3], array[2, 2, 2] = np.nan, np.inf
    return _write(sitk.GetImageFromArray(array), path)


BAD_INPUTS = {
    # name: (make(folder) -> path, expected message fragment)
    "missing": (lambda d: d / "nowhere.nii.gz", "does not exist"),
    "corrupt": (lambda d: _bytes(d / "noise.nii.gz", b"\x1f\x8b" + bytes(range(256)) * 4), "cannot read the image header"),
    "truncated_nii": (lambda d: _cut(d / "half.nii", _noise(), 0.5), "file is truncated"),
    "truncated_nii_gz_tail": (lambda d: _cut(d / "tail.nii.gz", _noise(), 0.99, True), "file is truncated"),
    "truncated_nii_last_bytes": (lambda d: _cut(d / "short.nii", _noise(), 0.999), "file is truncated"),
    "truncated_nrrd": (lambda d: _cut(d / "half.nrrd", _noise(), 0.5, True), "truncated or corrupt"),
    "truncated_mha": (lambda d: _cut(d / "half.mha", _noise(), 0.9), "truncated or corrupt"),
    "extension": (lambda d: _bytes(d / "photo.png", b"\x89PNG"), "unsupported file type '.png'"),
    "single_dicom_file": (lambda d: _bytes(d / "slice.dcm", b"DICM"), "pass the folder that holds the series"),
    "4d": (lambda d: _write(sitk.JoinSeries([sitk.Image([8, 8, 4], sitk.sitkInt16)] * 3), d / "scan4d.nii.gz"),
           "4D image with 3 volumes"),
    "vector": (lambda d: _write(sitk.Image([8, 8, 4], sitk.sitkVectorUInt8, 3), d / "rgb.nrrd"),
               "3 values per voxel"),
    "zero_axis": (lambda d: _mha(d / "empty.mha", "DimSize = 4 0 3\n", 0), "zero-length axis"),
    "nan": (lambda d: _nan(d / "nan.nrrd"), "2 voxels are NaN or infinite"),
    "skewed": (lambda d: _mha(d / "skew.mha", "DimSize = 4 4 3\nTransformMatrix = 1 0 0 0.5 1 0 0 0 1\n"),
               "not orthonormal"),
    "tiny_spacing": (lambda d: _mha(d / "tiny.mha", "DimSize = 4 4 3\nElementSpacing = 1 1 0.0001\n"),
                     "implausible voxel spacing 1 x 1 x 0.0001 mm"),
    "huge_spacing": (lambda d: _mha(d / "huge.mha", "DimSize = 4 4 3\nElementSpacing = 1 1 5000\n"),
                     "implausible voxel spacing"),
}


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
