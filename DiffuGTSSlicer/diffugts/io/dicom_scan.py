"""Find the volume in a DICOM folder from the files' headers: one classic series of slices or one enhanced
multi-frame image, with what was left out (other series, localizers, secondary captures, reports) said."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from .dicom_sequence import dicom_sequence

SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"  # and its multi-frame kinds, .7.1 to .7.4
NOT_VOLUMES = {  # image-like objects that are not slices of the patient's volume
    "1.2.840.10008.5.1.4.1.1.66.4": "segmentation (SEG)",
    "1.2.840.10008.5.1.4.1.1.481.2": "RT dose",
    "1.2.840.10008.5.1.4.1.1.481.1": "RT image",
}


@dataclass
class DicomFile:
    """What one file's header says about its frames (one frame for a classic slice)."""

    path: Path
    series_uid: str
    modality: str | None
    rows: int
    columns: int
    samples: int
    bits: int
    orientation: np.ndarray | None  # 6 values: the row direction, then the column direction (LPS)
    spacing: tuple[float, float] | None  # (between columns, between rows) in mm: the i and j spacing
    positions: np.ndarray | None  # (frames, 3) LPS position of each frame's first pixel
    slopes: np.ndarray
    intercepts: np.ndarray
    thickness: float | None  # Slice Thickness (the k spacing of a single slice)
    problem: str = ""  # why these frames cannot make a volume ("has no Image Position"), if they cannot
    sequence: tuple[str, str] | None = None  # an MR header's sequence and why (io.dicom_sequence)

    @property
    def frames(self) -> int:
        return len(self.slopes)


@dataclass
class DicomStack:
    """The frames chosen to make the volume, in file order; ``files[n]`` holds frame ``frame_index[n]``."""

    folder: Path
    series_uid: str
    modality: str | None
    files: list[Path]
    frame_index: list[int]
    rows: int
    columns: int
    samples: int
    bits: int
    row: np.ndarray  # unit LPS direction along a row (the i axis)
    column: np.ndarray  # unit LPS direction down a column (the j axis)
    spacing: tuple[float, float]
    positions: np.ndarray
    slopes: np.ndarray
    intercepts: np.ndarray
    thickness: float | None
    multiframe: bool
    warnings: list[str] = field(default_factory=list)
    sequence: tuple[str, str] | None = None  # an MR series' sequence and why (io.dicom_sequence)


def scan_folder(folder: Path) -> DicomStack:
    """The largest usable series (or multi-frame image) in ``folder``; what else is there becomes warnings."""
    import pydicom

    unreadable, skipped, candidates = [], [], defaultdict(list)
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
            kind = _skip_reason(ds)
            if kind:
                skipped.append(f"{kind} {path.name}")
                continue
            info = _file_info(path, ds)
        except Exception:  # noqa: BLE001 - any file pydicom cannot parse is reported by name, never raised
            unreadable.append(path.name)
            continue
        candidates[_group_key(info, candidates)].append(info)
    if not candidates:
        raise InputError("folder holds no DICOM series", path=folder,
                         hint="Pass an image file (.nii.gz, .nrrd, .mha) or a folder of DICOM slices.")
    key = max(candidates, key=lambda k: (not any(f.problem for f in candidates[k]),
                                         sum(f.frames for f in candidates[k]), str(k)))
    stack = _stack(folder, candidates[key])
    stack.warnings += _left_out(folder, key, candidates, unreadable, skipped)
    return stack


def _skip_reason(ds) -> str:
    """Why a readable DICOM object is not a slice of the volume ('' when it may be one)."""
    if "SeriesInstanceUID" not in ds or "SOPClassUID" not in ds:
        raise ValueError("not a DICOM object")
    sop_class = str(ds.SOPClassUID)
    if sop_class == SECONDARY_CAPTURE_PREFIX or sop_class.startswith(f"{SECONDARY_CAPTURE_PREFIX}."):
        return "secondary capture"
    if sop_class in NOT_VOLUMES:
        return NOT_VOLUMES[sop_class]
    if "Rows" not in ds or "Columns" not in ds:
        return f"{ds.get('Modality', 'non-image')} object"
    image_type = ds.get("ImageType", [])
    if any(v.strip().upper() == "LOCALIZER" for v in (image_type.split("\\") if isinstance(image_type, str)
                                                       else map(str, image_type))):
        return "localizer (scout)"
    return ""


def _file_info(path: Path, ds) -> DicomFile:
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    shared = _first(ds, "SharedFunctionalGroupsSequence")
    per_frame = list(ds.get("PerFrameFunctionalGroupsSequence", []))
    if frames > 1 or per_frame:
        orientation, spacing, positions, rescale, problem = _enhanced_geometry(ds, shared, per_frame, frames)
    else:
        orientation = _floats(ds.get("ImageOrientationPatient"), 6)
        spacing = _floats(ds.get("PixelSpacing"), 2)
        position = _floats(ds.get("ImagePositionPatient"), 3)
        positions = None if position is None else position[None]
        rescale = [(float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0))]
        missing = ", ".join(name for name, value in (("Image Position", position), ("Image Orientation", orientation),
                                                      ("Pixel Spacing", spacing)) if value is None)
        problem = f"has no {missing}" if missing else ""
    slopes, intercepts = (np.asarray(values, float) for values in zip(*rescale))
    return DicomFile(path, str(ds.SeriesInstanceUID), ds.get("Modality"), int(ds.Rows), int(ds.Columns),
                     int(ds.get("SamplesPerPixel", 1)), int(ds.get("BitsAllocated", 16)), orientation,
                     None if spacing is None else (float(spacing[1]), float(spacing[0])), positions, slopes,
                     intercepts, _thickness(ds, shared), problem,
                     dicom_sequence(ds) if str(ds.get("Modality", "")).upper() == "MR" else None)


def _enhanced_geometry(ds, shared, per_frame, frames):
    """Orientation, pixel spacing, per-frame positions and rescales of an enhanced multi-frame image:
    each from the frame's functional group, else the shared one (else the top level, for rescale)."""
    if per_frame and len(per_frame) != frames:
        raise ValueError("per-frame functional groups do not match the number of frames")
    groups = per_frame or [None] * frames

    def value(group, sequence, keyword):
        for source in (group, shared):
            item = _first(source, sequence) if source is not None else None
            if item is not None and keyword in item:
                return item.get(keyword)
        return None

    orientations = [_floats(value(g, "PlaneOrientationSequence", "ImageOrientationPatient"), 6) for g in groups]
    spacings = [_floats(value(g, "PixelMeasuresSequence", "PixelSpacing"), 2) for g in groups]
    positions = [_floats(value(g, "PlanePositionSequence", "ImagePositionPatient"), 3) for g in groups]
    missing = ", ".join(name for name, values in (("Plane Position", positions), ("Plane Orientation", orientations),
                                                   ("Pixel Spacing", spacings)) if any(v is None for v in values))
    if missing:
        return None, None, None, [(1.0, 0.0)] * frames, f"has no {missing} for its frames"
    if any(not np.allclose(o, orientations[0], atol=1e-4) for o in orientations):
        return None, None, None, [(1.0, 0.0)] * frames, "holds frames of several orientations (several stacks)"
    rescale = []
    for group in groups:
        slope = value(group, "PixelValueTransformationSequence", "RescaleSlope")
        intercept = value(group, "PixelValueTransformationSequence", "RescaleIntercept")
        rescale.append((float(slope if slope is not None else ds.get("RescaleSlope", 1) or 1),
                        float(intercept if intercept is not None else ds.get("RescaleIntercept", 0) or 0)))
    return orientations[0], spacings[0], np.asarray(positions), rescale, ""


def _thickness(ds, shared) -> float | None:
    measures = _first(shared, "PixelMeasuresSequence") if shared is not None else None
    value = (measures or {}).get("SliceThickness") or ds.get("SliceThickness")
    try:
        return float(value) if value is not None and float(value) > 0 else None
    except (TypeError, ValueError):
        return None


def _first(ds, keyword):
    sequence = ds.get(keyword) if ds is not None else None
    return sequence[0] if sequence else None


def _floats(values, count: int) -> np.ndarray | None:
    if values is None:
        return None
    try:
        array = np.asarray([float(v) for v in values], float)
    except (TypeError, ValueError):
        return None
    return array if array.shape == (count,) and np.all(np.isfinite(array)) else None


def _group_key(info: DicomFile, candidates: dict) -> tuple:
    """Files that stack into one volume: the same series and slice size, orientations within 1e-3 of each other
    (scanners write them with jitter in the last digits); a multi-frame file stands alone."""
    base = (info.series_uid, info.rows, info.columns, str(info.path) if info.frames > 1 else "")
    for key, files in candidates.items():
        other = files[0].orientation
        if key[:4] == base and (other is None) == (info.orientation is None) and (
                other is None or np.abs(other - info.orientation).max() < 1e-3):
            return key
    return (*base, len(candidates))


def _stack(folder: Path, files: list[DicomFile]) -> DicomStack:
    lacking = next((f for f in files if f.problem), None)
    if lacking is not None:
        raise InputError(f"{lacking.problem}: its voxels cannot be placed in the patient's space",
                         path=lacking.path, hint="Export the series from the scanner or PACS with its geometry "
                         "(a complete DICOM export), one stack per series.")
    first = files[0]
    paths = [f.path for f in files for _ in range(f.frames)]
    frame_index = [n for f in files for n in range(f.frames)]
    row, column = first.orientation[:3], first.orientation[3:]
    if not (abs(np.linalg.norm(row) - 1) < 1e-3 and abs(np.linalg.norm(column) - 1) < 1e-3
            and abs(row @ column) < 1e-3):
        raise InputError("Image Orientation (Patient) is not two perpendicular unit vectors", path=first.path,
                         hint="The header is damaged; re-export the series.")
    return DicomStack(folder, first.series_uid, first.modality, paths, frame_index, first.rows, first.columns,
                      first.samples, first.bits, row / np.linalg.norm(row), column / np.linalg.norm(column),
                      first.spacing, np.concatenate([f.positions for f in files]),
                      np.concatenate([f.slopes for f in files]), np.concatenate([f.intercepts for f in files]),
                      first.thickness, first.frames > 1, sequence=first.sequence)


def _left_out(folder: Path, chosen: tuple, candidates: dict, unreadable: list[str], skipped: list[str]) -> list[str]:
    warnings = []
    series = {key[0] for key in candidates}
    if len(series) > 1:
        others = ", ".join(f"{uid} ({_count(candidates, uid)})" for uid in sorted(series) if uid != chosen[0])
        warnings.append(f"{folder}: holds {len(series)} DICOM series; using the largest, {chosen[0]} "
                        f"({_count({chosen: candidates[chosen]}, chosen[0])}). Others: {others}.")
    same_series = [f.path.name for key, files in candidates.items() if key[0] == chosen[0] and key != chosen
                   for f in files]
    if same_series:
        warnings.append(f"{folder}: skipped {len(same_series)} files of the same series with another orientation, "
                        f"size or stack: {_names(same_series)}.")
    if skipped:
        warnings.append(f"{folder}: skipped {len(skipped)} files that are not slices of the volume: "
                        f"{_names(skipped)}.")
    if unreadable:
        warnings.append(f"{folder}: {len(unreadable)} files are not readable DICOM slices and were ignored: "
                        f"{_names(unreadable)}.")
    return warnings


def _count(candidates: dict, uid: str) -> str:
    files = [f for key, group in candidates.items() if key[0] == uid for f in group]
    frames = sum(f.frames for f in files)
    return f"{len(files)} files" if frames == len(files) else f"{len(files)} files, {frames} frames"


def _names(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
