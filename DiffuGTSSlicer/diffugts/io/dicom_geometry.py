"""The voxel grid of a stack of DICOM frames: slice order, spacing, and a gantry tilt undone.

A CT gantry tilted by t degrees writes image planes tilted by t but moves the table straight, so each slice is
shifted within its plane (along the image columns) against the one before: the voxels lie on a sheared grid.
Like dcm2niix (its ``_Tilt`` output) and Slicer's acquisition-geometry regularization, the stack is resampled
onto an orthogonal grid with the same in-plane axes and spacing, slices along the plane normal, and as many
extra rows as the shift needs; each slice is shifted by linear interpolation along its columns, and voxels
no slice covers get the volume's lowest value. The volume carries a warning that says so.
Slices missing, unevenly spaced, at the same position, or shifted along the rows (no gantry does that) are
refused with the positions, never read with a silent gap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

SPACING_TOLERANCE = 0.01  # gaps may differ from the usual one by 1% of it ...
SHIFT_TOLERANCE = 0.01  # ... and slices be shifted within their planes by a hundredth of a pixel ...
POSITION_TOLERANCE_MM = 0.02  # ... or by 0.02 mm, for positions written with two decimals (as some scanners do)
_REEXPORT = "The series is incomplete or mixes acquisitions; re-export the complete series."


@dataclass(frozen=True)
class StackGrid:
    """Where the frames go: ``order[k]`` is the frame of slice k; ``shift_rows[k]`` is how many rows down the
    orthogonal grid slice k's first row lies, and ``pad`` how many rows that grid adds (0: not tilted)."""

    order: np.ndarray
    origin: np.ndarray
    direction: np.ndarray  # 3x3, columns: the i (row), j (column) and k (normal) axes in LPS
    spacing: tuple[float, float, float]
    shift_rows: np.ndarray
    pad: int
    tilt_degrees: float

    @property
    def tilted(self) -> bool:
        return self.pad > 0


def stack_grid(positions: np.ndarray, row: np.ndarray, column: np.ndarray, spacing: tuple[float, float],
               thickness: float | None, names: list[str], where: Path) -> StackGrid:
    """The grid of frames at LPS ``positions`` with in-plane axes ``row``, ``column`` and ``spacing`` (i, j);
    ``names`` say where each frame is (file, or file and frame number) in refusals."""
    normal = np.cross(row, column)
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    along, positions = along[order], positions[order]
    direction = np.column_stack([row, column, normal])
    if len(order) == 1:
        return StackGrid(order, positions[0], direction, (*spacing, thickness or 1.0), np.zeros(1), 0, 0.0)
    _check_gaps(along, [names[n] for n in order], where)
    step = float(along[-1] - along[0]) / (len(along) - 1)
    offsets = positions - positions[0]
    sideways = offsets @ row / spacing[0]
    down = offsets @ column / spacing[1]
    across, along_columns = (max(SHIFT_TOLERANCE, POSITION_TOLERANCE_MM / s) for s in spacing)  # in pixels
    if np.abs(sideways).max() > across:
        raise InputError(f"slices are shifted along the image rows by up to {np.abs(sideways).max():.3g} pixels "
                         "(not a gantry tilt, which shifts them along the columns)", path=where,
                         hint="The series mixes acquisitions or its positions are damaged; re-export it.")
    if np.abs(down).max() <= along_columns:
        return StackGrid(order, positions[0], direction, (*spacing, step), np.zeros(len(order)), 0, 0.0)
    expected = down[-1] * (along - along[0]) / (along[-1] - along[0])
    if np.abs(down - expected).max() > along_columns:
        raise InputError("slices are shifted irregularly within their planes (not a constant gantry tilt)",
                         path=where, hint=_REEXPORT)
    pad = math.ceil(abs(down[-1]) - 1e-6)
    first_row = 0 if down[-1] > 0 else -pad
    tilt = math.degrees(math.atan2(down[-1] * spacing[1], along[-1] - along[0]))
    return StackGrid(order, positions[0] + first_row * spacing[1] * column, direction, (*spacing, step),
                     down - first_row, pad, tilt)


def _check_gaps(along: np.ndarray, names: list[str], where: Path) -> None:
    """Refuse slices at the same position and gaps that differ from the usual one, naming where they are."""
    gaps = np.diff(along)
    usual = float(np.median(gaps))
    if usual <= 0 or gaps.min() <= SPACING_TOLERANCE * usual:
        n = int(np.argmin(gaps))
        raise InputError(f"two slices lie at the same position ({along[n]:.4g} mm along the slice normal: "
                         f"{names[n]} and {names[n + 1]}); the folder holds several acquisitions or "
                         "time points of one series", path=where,
                         hint="Export one acquisition (one time point, echo or phase) into its own folder.")
    odd = np.flatnonzero(np.abs(gaps - usual) > max(SPACING_TOLERANCE * usual, POSITION_TOLERANCE_MM))
    if odd.size:
        shown = "; ".join(f"{gaps[n]:.4g} mm between {along[n]:.4g} and {along[n + 1]:.4g} mm "
                          f"({names[n]}, {names[n + 1]})" for n in odd[:3])
        more = f" and {odd.size - 3} more" if odd.size > 3 else ""
        raise InputError(f"slices are missing or unevenly spaced: {usual:.4g} mm apart, but {shown}{more} "
                         "(positions along the slice normal)", path=where, hint=_REEXPORT)


def untilt(array: np.ndarray, grid: StackGrid) -> np.ndarray:
    """The [k, j, i] stack of sheared slices resampled onto ``grid``'s orthogonal one (see the module note)."""
    if not grid.tilted:
        return array
    slices, rows, columns = array.shape
    fill = array.min()
    out = np.full((slices, rows + grid.pad, columns), fill, dtype=np.float32)
    for k in range(slices):
        source = np.arange(rows + grid.pad) - grid.shift_rows[k]
        inside = (source >= 0) & (source <= rows - 1)
        low = np.floor(source[inside]).astype(int)
        weight = (source[inside] - low)[:, None]
        out[k, inside] = array[k, low] * (1 - weight) + array[k, np.minimum(low + 1, rows - 1)] * weight
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(array.dtype)
    return out.astype(array.dtype)


def tilt_warning(where: Path, grid: StackGrid) -> str:
    return (f"{where}: gantry tilt of {abs(grid.tilt_degrees):.2f} degrees: the slices were resampled onto an "
            f"orthogonal grid ({grid.pad} rows added, slices {grid.spacing[2]:.4g} mm apart along the plane normal), "
            "as dcm2niix and Slicer do; outputs lie on that grid.")
