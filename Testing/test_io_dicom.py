"""DICOM series folders: written slice by slice by the test, read back on the same grid."""

from __future__ import annotations

import locale
import time

import numpy as np
import pytest
import SimpleITK as sitk
from geometry_cases import rotation

from diffugts.errors import InputError
from diffugts.io import Volume, read_volume


def write_dicom_series(folder, volume: Volume, series_uid: str, modality: str = "CT", prefix: str = "") -> None:
    """One DICOM file per k-slice with the position, orientation and spacing tags a scanner writes.

    GDCM's DICOM writer switches the process locale to "C" (Python then opens text as ASCII); the
    locale is restored afterwards so later tests see the process as it was.
    """
    saved = locale.setlocale(locale.LC_ALL)
    try:
        _write_slices(folder, volume, series_uid, modality, prefix)
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def _write_slices(folder, volume: Volume, series_uid: str, modality: str, prefix: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(volume.array)
    image.SetSpacing(volume.spacing)
    image.SetOrigin(volume.origin)
    image.SetDirection(volume.direction.ravel().tolist())
    d = volume.direction
    orientation = "\\".join(f"{v:.10f}" for v in (*d[:, 0], *d[:, 1]))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    date = time.strftime("%Y%m%d")
    for k in range(image.GetDepth()):
        slice_image = image[:, :, k]
        position = image.TransformIndexToPhysicalPoint((0, 0, k))
        tags = {
            "0008|0060": modality,
            "0008|0020": date,
            "0008|0016": "1.2.840.10008.5.1.4.1.1.2",
            "0008|0018": f"{series_uid}.{k + 1}",
            "0020|000d": "1.2.826.0.1.3680043.2.1125.1",
            "0020|000e": series_uid,
            "0020|0013": str(k + 1),
            "0020|0032": "\\".join(f"{p:.10f}" for p in position),
            "0020|0037": orientation,
            "0028|0030": f"{volume.spacing[1]:.10f}\\{volume.spacing[0]:.10f}",
            "0018|0050": f"{volume.spacing[2]:.10f}",
        }
        for tag, value in tags.items():
            slice_image.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"{prefix}slice{k:03d}.dcm"))
        writer.Execute(slice_image)


def _volume(shape_kji, seed=0) -> Volume:
    rng = np.random.default_rng(seed)
    array = rng.integers(-1000, 2000, size=shape_kji).astype(np.int16)
    return Volume(array, (0.75, 0.8, 2.5), (-100.0, 20.0, -300.0), rotation((1, 1, 0), 15))


def test_dicom_series_reads_back_on_its_grid(tmp_path):
    volume = _volume((6, 12, 10))
    write_dicom_series(tmp_path / "series", volume, "1.2.826.0.1.3680043.2.1125.10")
    back = read_volume(tmp_path / "series")
    assert np.array_equal(back.array, volume.array)
    assert back.grid.matches(volume.grid, tolerance=1e-6)
    assert back.modality == "CT" and back.metadata["modality_reason"] == "DICOM Modality tag"
    assert back.warnings == []


def test_folder_with_several_series_takes_the_largest_and_says_so(tmp_path):
    large, small = _volume((6, 12, 10)), _volume((3, 12, 10), seed=1)
    write_dicom_series(tmp_path / "mixed", large, "1.2.826.0.1.3680043.2.1125.20", prefix="a")
    write_dicom_series(tmp_path / "mixed", small, "1.2.826.0.1.3680043.2.1125.21", modality="MR", prefix="b")
    back = read_volume(tmp_path / "mixed")
    assert np.array_equal(back.array, large.array)
    assert len(back.warnings) == 1
    warning = back.warnings[0]
    assert "holds 2 DICOM series" in warning and "1.2.826.0.1.3680043.2.1125.20 (6 files)" in warning
    assert "1.2.826.0.1.3680043.2.1125.21 (3 files)" in warning


def test_folder_without_dicom_says_what_to_pass(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(InputError, match="folder holds no DICOM series") as error:
        read_volume(tmp_path)
    assert str(tmp_path) in str(error.value)


def test_truncated_middle_slice_is_refused_by_name_not_read_with_a_gap(tmp_path):
    write_dicom_series(tmp_path / "series", _volume((5, 12, 10)), "1.2.826.0.1.3680043.2.1125.30")
    victim = sorted((tmp_path / "series").iterdir())[2]
    victim.write_bytes(victim.read_bytes()[:-150])
    with pytest.raises(InputError, match="cannot read the pixel data of this slice: the file is truncated") as error:
        read_volume(tmp_path / "series")
    assert str(victim) in str(error.value) and "Re-export the series" in str(error.value)


def test_writing_a_series_leaves_the_text_encoding_as_it_was(tmp_path):
    before = locale.getpreferredencoding(False)
    write_dicom_series(tmp_path / "series", _volume((3, 12, 10)), "1.2.826.0.1.3680043.2.1125.50")
    assert locale.getpreferredencoding(False) == before


def test_unreadable_files_beside_a_series_are_named(tmp_path):
    volume = _volume((4, 12, 10))
    write_dicom_series(tmp_path / "series", volume, "1.2.826.0.1.3680043.2.1125.40")
    (tmp_path / "series" / "DICOMDIR.bak").write_bytes(b"not dicom")
    back = read_volume(tmp_path / "series")
    assert np.array_equal(back.array, volume.array)
    assert any("1 files are not readable DICOM slices" in w and "DICOMDIR.bak" in w for w in back.warnings)
