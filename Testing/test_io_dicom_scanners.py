"""DICOM as scanners write it, read on the grid dcm2niix (the reference converter) gives the same files:
pydicom's own CT, MR and enhanced CT files, enhanced multi-frame series, gantry tilt, mixed-in localizers and
secondary captures, and the refusals (missing slices, uneven spacing, no geometry) with their positions."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from dicom_cases import (dcm2niix, regular_positions, same_grid, tilted_series, write_enhanced, write_localizer,
                         write_secondary_capture, write_series)
from geometry_cases import rotation
from pydicom.data import get_testdata_file

from diffugts.errors import InputError
from diffugts.io import read_volume
from diffugts.io.write import to_sitk

GRID_TOLERANCE = 0.01  # voxels: the bar for "the same geometry as dcm2niix"
REAL_DICOM = Path(__file__).resolve().parents[2] / "shared" / "data" / "train" / "dicom" / "ts_example_ct_dicom"


def _pydicom_file(tmp_path: Path, name: str) -> Path:
    """A folder holding one of the test files pydicom ships (pydicom-data holds the enhanced ones)."""
    folder = tmp_path / Path(name).stem
    folder.mkdir()
    shutil.copy(get_testdata_file(name, download=False), folder)
    return folder


def _assert_like_dcm2niix(folder: Path, tmp_path: Path, *, values: float | None = 0.0, tilted: bool = False):
    """Our volume of ``folder``, after checking its grid (and, unless ``values`` is None, its voxels) against
    dcm2niix's."""
    ours = read_volume(folder)
    outputs = dcm2niix(folder, tmp_path / "dcm2niix")
    theirs = [image for name, image in outputs.items() if ("_Tilt" in name) == tilted]
    assert len(theirs) == 1, sorted(outputs)
    apart = same_grid(to_sitk(ours), theirs[0])
    assert apart["size"] == 0, (to_sitk(ours).GetSize(), theirs[0].GetSize())
    assert apart["origin_voxels"] < GRID_TOLERANCE and apart["spacing"] < 1e-4 and apart["direction"] < 1e-4, apart
    assert values is None or apart["values"] <= values, apart
    return ours


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm"])
def test_pydicoms_ct_and_mr_slices_read_as_dcm2niix_reads_them(tmp_path, name):
    volume = _assert_like_dcm2niix(_pydicom_file(tmp_path, name), tmp_path)
    reason = volume.metadata["modality_reason"]
    if name.startswith("CT"):
        assert volume.modality == "CT" and reason == "DICOM Modality tag"
    else:  # its header names no sequence; its timing (TR 4000 ms, TE 240 ms) is a T2's
        assert volume.modality == "MR-T2" and reason == "DICOM Modality tag; sequence from TR 4000 ms, TE 240 ms"


def test_pydicoms_enhanced_ct_frames_stored_backwards_read_in_order_as_dcm2niix(tmp_path):
    volume = _assert_like_dcm2niix(_pydicom_file(tmp_path, "eCT_Supplemental.dcm"), tmp_path)
    assert volume.size == (512, 512, 2) and volume.spacing[2] == pytest.approx(10.0)
    assert volume.array.min() == -1024  # the shared Pixel Value Transformation's intercept applied


def test_pydicoms_enhanced_mr_without_plane_positions_is_refused_by_name(tmp_path):
    folder = _pydicom_file(tmp_path, "emri_small.dcm")
    with pytest.raises(InputError, match="has no Plane Position, Plane Orientation, Pixel Spacing") as error:
        read_volume(folder)
    assert "emri_small.dcm" in str(error.value) and "cannot be placed in the patient's space" in str(error.value)


def _oblique_case(shape_kji=(6, 12, 10), seed=0):
    rng = np.random.default_rng(seed)
    array = rng.integers(-1000, 1500, size=shape_kji).astype(np.int16)
    direction = rotation((1, 2, 3), 25)
    spacing, origin = (0.7, 0.9, 2.5), (-60.0, 30.0, -250.0)
    return array, direction, spacing, regular_positions(origin, direction, spacing, shape_kji[0])


@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_enhanced_multiframe_with_per_frame_rescale_reads_its_values_on_dcm2niixs_grid(tmp_path, modality):
    array, direction, spacing, positions = _oblique_case()
    if modality == "MR":
        array = np.abs(array)
    order = np.array([3, 0, 5, 1, 4, 2])  # frames stored out of order, as the dimension index allows
    write_enhanced(tmp_path / "mf" / "enhanced.dcm", array, spacing, positions, direction[:, 0], direction[:, 1],
                   modality=modality, frame_order=order)
    volume = _assert_like_dcm2niix(tmp_path / "mf", tmp_path, values=None)  # dcm2niix takes one rescale for all
    slopes = 0.5 + 0.25 * np.argsort(order)  # write_enhanced's per-frame slopes for MR (stored = value / slope)
    expected = array if modality == "CT" else np.rint(array / slopes[:, None, None]) * slopes[:, None, None]
    np.testing.assert_allclose(volume.array, expected, atol=1e-4)
    assert volume.grid.matches(read_volume(tmp_path / "mf").grid)
    np.testing.assert_allclose(volume.direction, direction, atol=1e-6)


def test_oblique_classic_series_in_shuffled_files_reads_as_dcm2niix(tmp_path):
    array, direction, spacing, positions = _oblique_case()
    write_series(tmp_path / "series", array, spacing, positions, direction[:, 0], direction[:, 1])
    volume = _assert_like_dcm2niix(tmp_path / "series", tmp_path)
    assert np.array_equal(volume.array, array) and volume.warnings == []
    np.testing.assert_allclose(volume.origin, positions[0], atol=1e-6)


def _linear_truth(volume, gradient, offset):
    """The tilted phantom's value at every voxel centre, and where a voxel lies between two source rows."""
    k, j, i = np.meshgrid(*[np.arange(n) for n in volume.array.shape], indexing="ij")
    points = np.stack([i, j, k, np.ones_like(i)], axis=-1) @ volume.grid.ijk_to_lps.T
    covered = volume.array > volume.array.min()
    covered[:, 1:-1] &= covered[:, :-2] & covered[:, 2:]  # leave out each slice's first and last covered rows
    return points[..., :3] @ gradient + offset, covered


@pytest.mark.parametrize("tilt", [-15.0, 22.0])
def test_gantry_tilted_ct_is_resampled_onto_an_orthogonal_grid_with_a_warning(tmp_path, tilt):
    gradient, offset = tilted_series(tmp_path / "tilted", tilt)
    volume = read_volume(tmp_path / "tilted")
    truth, covered = _linear_truth(volume, gradient, offset)
    assert covered.sum() > 0.4 * volume.array.size  # 12 of 18 rows hold data, less the two edge rows
    error = (volume.array - truth)[covered]
    assert np.abs(error).max() <= 0.025 + 1e-3  # linear data, linear resampling: only the 0.05 HU storage steps
    assert abs(error.mean()) < 0.02  # a grid off by two thousandths of a row (0.04 HU) would show
    assert np.allclose(volume.direction.T @ volume.direction, np.eye(3))
    assert volume.spacing[2] == pytest.approx(2.5 * np.cos(np.radians(tilt)))
    assert any(f"gantry tilt of {abs(tilt):.2f} degrees" in w and "resampled onto an orthogonal grid" in w
               for w in volume.warnings)
    theirs = next(im for name, im in dcm2niix(tmp_path / "tilted", tmp_path / "dcm2niix").items() if "_Tilt" in name)
    apart = same_grid(to_sitk(volume), theirs)
    assert apart["size"] == 0 and apart["spacing"] < 1e-4 and apart["direction"] < 1e-4, apart
    if tilt < 0:  # dcm2niix's _Tilt origin is right when it pads before the first row ...
        assert apart["origin_voxels"] < GRID_TOLERANCE, apart
    # ... and off by the padding along its matrix's y row otherwise (adjustOriginForNegativeTilt); our origin is
    # checked by the voxel values against the phantom's truth above in both cases.


def test_untilted_series_with_a_tilt_tag_is_not_resampled(tmp_path):
    array, direction, spacing, positions = _oblique_case()
    write_series(tmp_path / "series", array, spacing, positions, direction[:, 0], direction[:, 1], tilt_degrees=0.0)
    volume = read_volume(tmp_path / "series")
    assert np.array_equal(volume.array, array) and volume.warnings == []


def _axial(folder: Path, slices=6, gap_after: int | None = None, series_uid=None):
    array = np.arange(slices * 12 * 10, dtype=np.int16).reshape(slices, 12, 10)
    positions = regular_positions((-50.0, -60.0, -100.0), np.eye(3), (0.8, 0.9, 2.5), slices)
    if gap_after is not None:
        positions[gap_after + 1:, 2] += 2.5
    write_series(folder, array, (0.8, 0.9, 2.5), positions, np.eye(3)[0], np.eye(3)[1], series_uid=series_uid)
    return array


def test_missing_slice_is_refused_with_the_positions_and_files_around_the_gap(tmp_path):
    _axial(tmp_path / "series", gap_after=2)
    with pytest.raises(InputError, match="slices are missing or unevenly spaced: 2.5 mm apart, but 5 mm between "
                                         r"-95 and -90 mm \(slice\d+.dcm, slice\d+.dcm\)") as error:
        read_volume(tmp_path / "series")
    assert "re-export the complete series" in str(error.value)


def test_two_slices_at_one_position_are_refused(tmp_path):
    _axial(tmp_path / "series")
    shutil.copy(sorted((tmp_path / "series").iterdir())[0], tmp_path / "series" / "copy.dcm")
    with pytest.raises(InputError, match="two slices lie at the same position"):
        read_volume(tmp_path / "series")


def test_localizer_and_secondary_capture_in_the_folder_are_skipped_with_a_warning(tmp_path):
    series_uid = "1.2.826.0.1.3680043.8.498.77"
    array = _axial(tmp_path / "series", series_uid=series_uid)
    write_localizer(tmp_path / "series" / "scout.dcm", series_uid)
    write_secondary_capture(tmp_path / "series" / "dose_report.dcm", series_uid)
    volume = read_volume(tmp_path / "series")
    assert np.array_equal(volume.array, array)
    skipped = [w for w in volume.warnings if "not slices of the volume" in w]
    assert len(skipped) == 1 and "localizer (scout) scout.dcm" in skipped[0]
    assert "secondary capture dose_report.dcm" in skipped[0]
    assert volume.metadata["dicom_series_uid"] == series_uid


@pytest.mark.skipif(not REAL_DICOM.is_dir(), reason="../shared/data/train/dicom/ts_example_ct_dicom not found")
def test_real_siemens_ct_series_reads_as_dcm2niix(tmp_path):
    volume = _assert_like_dcm2niix(REAL_DICOM, tmp_path)
    assert volume.size == (512, 512, 20) and volume.modality == "CT" and volume.warnings == []


def test_orientation_jitter_in_the_last_digits_keeps_the_series_whole(tmp_path):
    array = _axial(tmp_path / "series")
    for n, path in enumerate(sorted((tmp_path / "series").iterdir())):  # 0.00051 and 0.00049 round apart
        ds = pydicom.dcmread(path)
        ds.ImageOrientationPatient = ["1", "0.00051" if n % 2 else "0.00049", "0", "0", "1", "0"]
        ds.save_as(path)
    volume = read_volume(tmp_path / "series")
    assert volume.array.shape == array.shape and volume.warnings == []


def test_multiframe_with_two_frames_at_one_position_is_refused_naming_the_frames(tmp_path):
    array, direction, spacing, positions = _oblique_case()
    positions[4] = positions[3]  # a second time point of slice 3, as a 4D acquisition stores it
    write_enhanced(tmp_path / "mf" / "dynamic.dcm", array, spacing, positions, direction[:, 0], direction[:, 1],
                   frame_order=np.arange(6))
    with pytest.raises(InputError, match=r"two slices lie at the same position \(.* mm along the slice normal: "
                                         r"dynamic.dcm frame 4 and dynamic.dcm frame 5\)"):
        read_volume(tmp_path / "mf")


def test_slices_shifted_along_the_rows_are_refused_not_taken_for_a_gantry_tilt(tmp_path):
    array = np.zeros((5, 12, 10), np.int16)
    positions = regular_positions((-50.0, -60.0, -100.0), np.eye(3), (0.8, 0.9, 2.5), 5)
    positions[:, 0] += np.arange(5) * 0.4  # sideways, along the image rows: no gantry moves like that
    write_series(tmp_path / "series", array, (0.8, 0.9, 2.5), positions, np.eye(3)[0], np.eye(3)[1])
    with pytest.raises(InputError, match="slices are shifted along the image rows by up to 2 pixels"):
        read_volume(tmp_path / "series")


def test_positions_written_with_two_decimals_read_as_the_regular_grid_they_are(tmp_path):
    rng = np.random.default_rng(5)
    direction, spacing = rotation((2, 1, 3), 20), (0.35, 0.35, 0.6)
    positions = np.round(regular_positions((-60.123, 30.456, -250.789), direction, spacing, 12), 2)
    array = rng.integers(-1000, 1000, (12, 16, 14)).astype(np.int16)
    write_series(tmp_path / "series", array, spacing, positions, direction[:, 0], direction[:, 1])
    volume = read_volume(tmp_path / "series")  # not refused as unevenly spaced, nor resampled as tilted
    assert np.array_equal(volume.array, array) and volume.warnings == []
    assert volume.spacing[2] == pytest.approx(0.6, abs=0.02 / 11)  # from the whole stack, so within 2 hundredths
    np.testing.assert_allclose(volume.direction, direction, atol=1e-6)
    theirs = next(iter(dcm2niix(tmp_path / "series", tmp_path / "dcm2niix").values()))
    apart = same_grid(to_sitk(volume), theirs)  # dcm2niix takes the spacing from the first two slices alone
    assert apart["size"] == 0 and apart["origin_voxels"] < GRID_TOLERANCE and apart["direction"] < 1e-4, apart
