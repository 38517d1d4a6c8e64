"""The few NIfTI-1/NIfTI-2 header fields the reader checks itself, parsed with struct (no nibabel)."""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .safe_write import compound_suffix

HEADER_BYTES = 540  # NIfTI-2's header; NIfTI-1's is the first 348 of these

# sizeof_hdr: (vox_offset, sform_code, srow_x..z, magic offset, magic values) per NIfTI version
_LAYOUT = {
    348: (("f", 108), ("h", 254), ("f", 280), 344, (b"n+1", b"ni1")),
    540: (("q", 168), ("i", 348), ("d", 400), 4, (b"n+2", b"ni2")),
}
_BITPIX_AT = {348: 72, 540: 14}  # bits per voxel of the stored datatype (before any scl_slope scaling)


@dataclass(frozen=True)
class NiftiHeader:
    """NIfTI version (1 or 2), where the voxels start, the sform (srow_x..z as a 3x4 RAS matrix) with its code,
    and the bits per stored voxel."""

    version: int
    vox_offset: int
    sform_code: int
    sform: np.ndarray
    bitpix: int = 0


def open_nifti(path: Path) -> BinaryIO:
    """The file's uncompressed byte stream (.nii.gz is gunzipped as it is read)."""
    return gzip.open(path, "rb") if compound_suffix(path) == ".nii.gz" else open(path, "rb")


def parse_nifti_header(raw: bytes) -> NiftiHeader | None:
    """The header at the start of ``raw`` (either byte order), or None when it is not a whole NIfTI-1/2 header."""
    for order in "<>":
        if len(raw) >= 4 and (layout := _LAYOUT.get(struct.unpack(order + "i", raw[:4])[0])):
            break
    else:
        return None
    (offset_type, offset_at), (code_type, code_at), (row_type, rows_at), magic_at, magics = layout
    size = struct.unpack(order + "i", raw[:4])[0]
    if len(raw) < size or raw[magic_at:magic_at + 3] not in magics:
        return None
    rows = struct.unpack_from(order + 12 * row_type, raw, rows_at)
    return NiftiHeader(
        version=1 if size == 348 else 2,
        vox_offset=int(struct.unpack_from(order + offset_type, raw, offset_at)[0]),
        sform_code=int(struct.unpack_from(order + code_type, raw, code_at)[0]),
        sform=np.asarray(rows, dtype=float).reshape(3, 4),
        bitpix=int(struct.unpack_from(order + "h", raw, _BITPIX_AT[size])[0]),
    )
