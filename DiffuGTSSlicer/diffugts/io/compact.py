"""Compact volume files: maps of values in [0, 1] as 8-bit NIfTI with a scale in the header, any volume in a
given pixel type, gzipped at a chosen level.

NIfTI readers (SimpleITK/ITK, so 3D Slicer; nibabel) apply the header's ``scl_slope``: an 8-bit map reads back
as floats in [0, 1] within 1/510 of the values written, at a quarter of float32's bytes before compression
and a sixth to a tenth after (benchmarks/README.md, "Outputs"). ITK's writer always stores a slope of 1, so
the file is written uncompressed by ITK, its header patched, then gzipped here. Formats without a scale field
that readers apply (NRRD, MetaImage) get the same quantized values as float32.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .safe_write import atomic_output, compound_suffix
from .volume import Volume
from .write import to_sitk

UNIT_STEPS = 255
# 1/255 rounded down in float32, so that 255 * slope stays <= 1 however a reader multiplies (float32 or float64)
UNIT_SLOPE = float(np.nextafter(np.float32(1 / UNIT_STEPS), np.float32(0)))
GZIP_LEVEL = 6  # measured knee of size against time for these maps: level 9 saves under 1% at 2-4x the time
MASK_GZIP_LEVEL = 1  # label maps and masks shrink 70x already at level 1, in a third of level 6's time
_NIFTI1_HEADER = 348
_SCL_SLOPE_AT = 112  # scl_slope, scl_inter: two float32 in a NIfTI-1 header


def quantize_unit(array: np.ndarray) -> np.ndarray:
    """uint8 steps of 1/255 nearest to ``array`` (clipped to [0, 1])."""
    scaled = np.clip(array, 0.0, 1.0, dtype=np.float32) * np.float32(UNIT_STEPS)
    return np.rint(scaled, out=scaled).astype(np.uint8)


def in_pixel_type(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``array`` as ``dtype``: rounded and clipped to its range for an integer type (a CT's int16), else cast."""
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.integer):
        return array.astype(dtype, copy=False)
    limits = np.iinfo(dtype)
    return np.clip(np.rint(array), limits.min, limits.max).astype(dtype)


def write_unit_map(volume: Volume, path: str | Path, level: int = GZIP_LEVEL) -> Path:
    """Write a map of values in [0, 1] so that readers get floats within 1/510 of them: 8-bit with a header
    scale for NIfTI, quantized float32 for other formats."""
    steps = quantize_unit(volume.array)
    if compound_suffix(path) in (".nii.gz", ".nii"):
        return write_compressed(volume.like(steps), path, level, slope=UNIT_SLOPE)
    values = steps.astype(np.float32) * np.float32(UNIT_SLOPE)
    return write_compressed(volume.like(values), path, level)


def write_compressed(volume: Volume, path: str | Path, level: int = GZIP_LEVEL, *, slope: float | None = None) -> Path:
    """Write ``volume`` (its pixel type kept) at gzip ``level``; ``slope``: the NIfTI scale readers apply."""
    path = Path(path)
    suffix = compound_suffix(path)
    if suffix not in (".nii.gz", ".nii"):
        if slope is not None:
            raise ValueError(f"a header scale needs NIfTI, not {suffix}")
        with atomic_output(path) as temp:
            sitk.WriteImage(to_sitk(volume), str(temp), useCompression=True, compressionLevel=level)
        return path
    with atomic_output(path) as temp:
        plain = temp.with_name(temp.name.removesuffix(".gz") + ".plain.nii")
        try:
            sitk.WriteImage(to_sitk(volume), str(plain), useCompression=False)
            data = bytearray(plain.read_bytes())
        finally:
            plain.unlink(missing_ok=True)
        if slope is not None:
            _set_slope(data, slope)
        temp.write_bytes(gzip.compress(data, level, mtime=0) if suffix == ".nii.gz" else data)
    return path


def _set_slope(data: bytearray, slope: float) -> None:
    """Set scl_slope (and scl_inter 0) in the NIfTI-1 header at the start of ``data``, in its byte order."""
    for order in "<>":
        if struct.unpack_from(order + "i", data, 0)[0] == _NIFTI1_HEADER:
            struct.pack_into(order + "ff", data, _SCL_SLOPE_AT, slope, 0.0)
            return
    raise ValueError("not a NIfTI-1 header")
