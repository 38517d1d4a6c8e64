"""DICOM files as scanners write them, made with pydicom: classic slice series (also gantry-tilted, with a
localizer or a secondary capture mixed in) and enhanced multi-frame CT/MR; and how dcm2niix reads them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED = {"CT": "1.2.840.10008.5.1.4.1.1.2.1", "MR": "1.2.840.10008.5.1.4.1.1.4.1"}
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
STUDY_UID = "1.2.826.0.1.3680043.8.498.1"
FRAME_OF_REFERENCE_UID = "1.2.826.0.1.3680043.8.498.2"


def _ds(v: float) -> str:
    """A decimal string of at most 16 characters (DICOM's DS limit) keeping as many digits as fit."""
    for digits in range(10, 0, -1):
        text = f"{v:.{digits}f}".rstrip("0").rstrip(".")
        if len(text) <= 16:
            return text
    raise ValueError(v)


def _base(sop_class: str, modality: str, series_uid: str, rows: int, columns: int) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientName, ds.PatientID = modality, "Test^Phantom", "PHANTOM1"
    ds.PatientBirthDate, ds.PatientSex = "19700101", "O"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = STUDY_UID, series_uid
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20260101", "120000", "1", "A1"
    ds.ReferringPhysicianName, ds.SeriesNumber, ds.Manufacturer = "", 1, "pydicom test"
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = FRAME_OF_REFERENCE_UID, ""
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = rows, columns, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    return ds


def write_series(folder: Path, array_kji: np.ndarray, spacing: tuple[float, float, float],
                 positions: np.ndarray, row: np.ndarray, column: np.ndarray, *, modality: str = "CT",
                 series_uid: str | None = None, tilt_degrees: float | None = None, prefix: str = "slice",
                 shuffle: bool = True, slope: float = 1.0) -> list[Path]:
    """One classic DICOM file per slice ``array_kji[k]`` at LPS ``positions[k]``; ``spacing`` is (column, row,
    thickness) in mm; a CT's values are stored with intercept -1024 and ``slope``. Files are named in a shuffled
    order, as an archive may hand them out."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    order = np.random.default_rng(0).permutation(len(array_kji)) if shuffle else np.arange(len(array_kji))
    paths = []
    for number, k in enumerate(order):
        ds = _base(CT_IMAGE if modality == "CT" else MR_IMAGE, modality, series_uid, *array_kji.shape[1:])
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.InstanceNumber = int(k) + 1
        ds.ImagePositionPatient = [_ds(p) for p in positions[k]]
        ds.ImageOrientationPatient = [_ds(v) for v in (*row, *column)]
        ds.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]
        ds.SliceThickness = _ds(spacing[2])
        if tilt_degrees is not None:
            ds.GantryDetectorTilt = _ds(tilt_degrees)
        if modality == "CT":
            ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "-1024", _ds(slope), "HU"
            stored = np.rint((array_kji[k].astype(np.float64) + 1024) / slope)
        else:
            stored = array_kji[k]
        ds.PixelData = stored.astype(np.int16).tobytes()
        path = folder / f"{prefix}{number:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def regular_positions(origin, direction: np.ndarray, spacing, slices: int) -> np.ndarray:
    """LPS positions of the slices of a regular grid (``direction`` columns: the i, j, k axes)."""
    return np.asarray(origin, float) + np.arange(slices)[:, None] * spacing[2] * direction[:, 2]


def tilted_series(folder: Path, tilt_degrees: float, *, shape_kji=(8, 12, 10), spacing=(0.8, 0.9, 2.5),
                  origin=(-40.0, -60.0, -100.0)) -> tuple[np.ndarray, np.ndarray]:
    """A CT series as a gantry tilted about the patient's left-right axis writes it: image planes tilted by
    ``tilt_degrees``, slices stacked straight along the table (z, ``spacing[2]`` apart). Intensity is a linear
    function of the LPS position (returned as (gradient, offset)), which linear resampling keeps exactly; it is
    stored in steps of 0.05 HU (rescale slope), so a voxel's value says where it lies to a thousandth of a row."""
    t = np.radians(tilt_degrees)
    row, column = np.array([1.0, 0.0, 0.0]), np.array([0.0, np.cos(t), np.sin(t)])
    positions = np.asarray(origin) + np.arange(shape_kji[0])[:, None] * np.array([0.0, 0.0, spacing[2]])
    k, j, i = np.meshgrid(*[np.arange(n) for n in shape_kji], indexing="ij")
    points = positions[k] + i[..., None] * spacing[0] * row + j[..., None] * spacing[1] * column
    gradient, offset = np.array([3.0, 20.0, 5.0]), 1500.0  # steep down the columns: a row off shows
    write_series(folder, points @ gradient + offset, spacing, positions, row, column, tilt_degrees=tilt_degrees,
                 slope=0.05)
    return gradient, offset


def write_enhanced(path: Path, array_kji: np.ndarray, spacing: tuple[float, float, float], positions: np.ndarray,
                   row: np.ndarray, column: np.ndarray, *, modality: str = "CT",
                   frame_order: np.ndarray | None = None) -> Path:
    """One enhanced (multi-frame) CT or MR file: shared orientation and pixel measures, a position and a
    rescale per frame; frames stored in ``frame_order`` (default reversed, as some scanners do)."""
    order = np.arange(len(array_kji))[::-1] if frame_order is None else frame_order
    ds = _base(ENHANCED[modality], modality, generate_uid(), *array_kji.shape[1:])
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    ds.NumberOfFrames = len(array_kji)
    ds.ContentDate, ds.ContentTime, ds.InstanceNumber = "20260101", "120000", 1
    orientation, measures = Dataset(), Dataset()
    orientation.ImageOrientationPatient = [_ds(v) for v in (*row, *column)]
    measures.PixelSpacing = [_ds(spacing[1]), _ds(spacing[0])]
    measures.SliceThickness = _ds(spacing[2])
    shared = Dataset()
    shared.PlaneOrientationSequence = Sequence([orientation])
    shared.PixelMeasuresSequence = Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames, stored = [], []
    for n, k in enumerate(order):
        position, content, rescale = Dataset(), Dataset(), Dataset()
        position.ImagePositionPatient = [_ds(p) for p in positions[k]]
        content.InStackPositionNumber, content.StackID = int(k) + 1, "1"
        slope, intercept = (1.0, -1024.0 - n) if modality == "CT" else (0.5 + 0.25 * n, 0.0)
        rescale.RescaleSlope, rescale.RescaleIntercept = _ds(slope), _ds(intercept)
        rescale.RescaleType = "HU" if modality == "CT" else "US"
        frame = Dataset()
        frame.PlanePositionSequence = Sequence([position])
        frame.FrameContentSequence = Sequence([content])
        frame.PixelValueTransformationSequence = Sequence([rescale])
        frames.append(frame)
        stored.append(np.rint((array_kji[k].astype(float) - intercept) / slope).astype(np.int16))
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    ds.PixelData = np.stack(stored).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_localizer(path: Path, series_uid: str, rows: int = 12, columns: int = 10) -> Path:
    """A scout image (ImageType LOCALIZER, coronal) that a scanner files in the axial series' folder."""
    ds = _base(CT_IMAGE, "CT", series_uid, rows, columns)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    ds.InstanceNumber = 999
    ds.ImagePositionPatient, ds.ImageOrientationPatient = ["-200", "0", "100"], ["1", "0", "0", "0", "0", "-1"]
    ds.PixelSpacing, ds.SliceThickness = ["2", "2"], "1"
    ds.PixelData = np.zeros((rows, columns), np.int16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def write_secondary_capture(path: Path, series_uid: str) -> Path:
    """A secondary capture (a dose report screenshot) with no position or orientation."""
    ds = _base(SECONDARY_CAPTURE, "OT", series_uid, 16, 16)
    ds.ImageType, ds.InstanceNumber, ds.ConversionType = ["DERIVED", "SECONDARY"], 1000, "WSD"
    ds.PixelData = np.zeros((16, 16), np.int16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def dcm2niix(folder: Path, out: Path) -> dict[str, sitk.Image]:
    """What dcm2niix (the PyPI package's binary) makes of ``folder``: file name -> each NIfTI it writes."""
    binary = shutil.which("dcm2niix") or str(Path(sys.executable).parent / "dcm2niix")
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([binary, "-z", "n", "-b", "n", "-f", "%s_%p", "-o", str(out), str(folder)], check=True,
                   capture_output=True, text=True)
    return {p.name: sitk.ReadImage(str(p)) for p in sorted(out.glob("*.nii"))}


def same_grid(ours: sitk.Image, theirs: sitk.Image) -> dict[str, float]:
    """How far two images' grids are apart once both are reoriented to the nearest of LPS's axis orders and
    signs (dcm2niix flips rows): origin in voxels, spacing (relative) and direction; and whether the voxels agree."""
    a, b = sitk.DICOMOrient(ours, "LPS"), sitk.DICOMOrient(theirs, "LPS")
    if a.GetSize() != b.GetSize():
        return {"size": float("inf")}
    origin = (np.asarray(a.GetOrigin()) - np.asarray(b.GetOrigin())) @ np.asarray(a.GetDirection()).reshape(3, 3)
    return {
        "size": 0.0,
        "origin_voxels": float(np.abs(origin / np.asarray(a.GetSpacing())).max()),
        "spacing": float(np.abs(np.asarray(a.GetSpacing()) / np.asarray(b.GetSpacing()) - 1).max()),
        "direction": float(np.abs(np.asarray(a.GetDirection()) - np.asarray(b.GetDirection())).max()),
        "values": float(np.abs(sitk.GetArrayFromImage(a).astype(float) - sitk.GetArrayFromImage(b)).max()),
    }
