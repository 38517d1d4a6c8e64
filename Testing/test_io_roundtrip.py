"""Every format round-trips bit-exact on every grid; outputs land on their input's grid."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from geometry_cases import DIRECTIONS, make_volume

from diffugts.errors import DiffuGTSError
from diffugts.io import Volume, read_volume, write_volume

FORMATS = [".nii.gz", ".nii", ".nrrd", ".mha"]


@pytest.mark.parametrize("direction", sorted(DIRECTIONS))
@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("dtype", ["int16", "uint8", "float32"])
def test_round_trip_is_bit_exact(tmp_path, direction, suffix, dtype):
    volume = make_volume(direction, dtype)
    path = write_volume(volume, tmp_path / f"image{suffix}")
    back = read_volume(path)
    assert back.array.dtype == volume.array.dtype
    assert np.array_equal(back.array, volume.array)
    assert back.grid.matches(volume.grid, tolerance=1e-6), (back.grid, volume.grid)


def test_mhd_header_and_raw_are_read(tmp_path):
    volume = make_volume("oblique")
    sitk_image = sitk.GetImageFromArray(volume.array)
    sitk_image.SetSpacing(volume.spacing)
    sitk_image.SetOrigin(volume.origin)
    sitk_image.SetDirection(volume.direction.ravel().tolist())
    sitk.WriteImage(sitk_image, str(tmp_path / "image.mhd"))
    back = read_volume(tmp_path / "image.mhd")
    assert np.array_equal(back.array, volume.array)
    assert back.grid.matches(volume.grid, tolerance=1e-9)


@pytest.mark.parametrize("suffix", FORMATS)
def test_output_lies_exactly_on_input_grid(tmp_path, suffix):
    """Input file -> read -> mask made with Volume.like -> written -> read: the same grid, to the last bit."""
    source = make_volume("oblique", "int16")
    write_volume(source, tmp_path / f"input{suffix}")
    image = read_volume(tmp_path / f"input{suffix}")
    mask = image.like((image.array > 0).astype(np.uint8))
    back = read_volume(write_volume(mask, tmp_path / f"mask{suffix}"))
    assert back.grid.matches(image.grid, tolerance=0.0)
    assert np.array_equal(back.array, mask.array)


def test_nifti_stores_geometry_as_float32(tmp_path):
    """NIfTI's header is float32: a float64 origin comes back rounded (the format's limit), NRRD keeps it."""
    volume = make_volume("oblique")
    volume.origin = (-123.456789012, 45.678901234, -678.123456789)
    nifti = read_volume(write_volume(volume, tmp_path / "a.nii.gz"))
    nrrd = read_volume(write_volume(volume, tmp_path / "a.nrrd"))
    assert nrrd.grid.matches(volume.grid, tolerance=1e-9)
    assert np.allclose(nifti.origin, np.float32(volume.origin), atol=1e-9)


def test_2d_image_is_a_one_slice_volume_and_is_written_back_2d(tmp_path):
    image = sitk.GetImageFromArray(np.arange(20 * 30, dtype=np.int16).reshape(20, 30))
    image.SetSpacing((0.5, 0.8))
    image.SetOrigin((10.0, -20.0))
    image.SetDirection((0.0, 1.0, 1.0, 0.0))
    sitk.WriteImage(image, str(tmp_path / "slice.nrrd"))
    volume = read_volume(tmp_path / "slice.nrrd")
    assert volume.array.shape == (1, 20, 30) and volume.source_ndim == 2
    write_volume(volume.like(volume.array * 2), tmp_path / "out.nrrd")
    back = sitk.ReadImage(str(tmp_path / "out.nrrd"))
    assert back.GetDimension() == 2
    assert back.GetSpacing() == image.GetSpacing() and back.GetOrigin() == image.GetOrigin()
    assert back.GetDirection() == image.GetDirection()
    assert np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(image) * 2)


def test_4d_image_with_one_volume_is_accepted(tmp_path):
    volume = make_volume("LPS")
    image = sitk.JoinSeries([sitk.GetImageFromArray(volume.array)])
    sitk.WriteImage(image, str(tmp_path / "one.nii.gz"))
    assert np.array_equal(read_volume(tmp_path / "one.nii.gz").array, volume.array)


def test_write_never_overwrites_an_input(tmp_path):
    path = write_volume(make_volume("LPS"), tmp_path / "input.nrrd")
    before = path.read_bytes()
    image = read_volume(path)
    with pytest.raises(DiffuGTSError, match="refusing to overwrite an input"):
        write_volume(image.like(image.array * 0), path)
    assert path.read_bytes() == before


def test_failed_write_leaves_no_partial_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = write_volume(make_volume("LPS"), tmp_path / "out.nrrd")
    before = target.read_bytes()

    def write_half_then_fail(image, name, *args, **kwargs):
        with open(name, "wb") as handle:
            handle.write(b"NRRD0004\n")
        raise RuntimeError("disk full")

    monkeypatch.setattr(sitk, "WriteImage", write_half_then_fail)
    with pytest.raises(RuntimeError, match="disk full"):
        write_volume(make_volume("RAS"), target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nrrd"]


def test_outputs_get_the_users_usual_permissions_not_0600(tmp_path):
    import os
    import stat

    previous = os.umask(0o022)
    try:
        path = write_volume(make_volume("LPS"), tmp_path / "out.nrrd")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_unwritable_output_place_is_a_clear_error(tmp_path):
    blocker = write_volume(make_volume("LPS"), tmp_path / "file.nrrd")
    with pytest.raises(DiffuGTSError, match="cannot write here"):
        write_volume(make_volume("LPS"), blocker / "sub" / "out.nrrd")


def test_unknown_output_format_is_refused(tmp_path):
    with pytest.raises(DiffuGTSError, match="cannot write a volume as '.png'"):
        write_volume(make_volume("LPS"), tmp_path / "out.png")


def test_like_refuses_an_array_of_another_shape():
    volume = make_volume("LPS")
    with pytest.raises(ValueError, match="differs from the grid"):
        volume.like(np.zeros((1, 2, 3)))


def test_volume_requires_3d_array():
    with pytest.raises(ValueError, match="must be 3D"):
        Volume(np.zeros((2, 2)), (1, 1, 1), (0, 0, 0), np.eye(3))


def test_multi_member_gzip_nifti_is_read_whole(tmp_path):
    """Concatenated gzip members (as some tools write) are valid: the length check must count, not guess."""
    import gzip

    volume = make_volume("RAS", shape_kji=(6, 10, 12))
    raw = write_volume(volume, tmp_path / "plain.nii").read_bytes()
    half = len(raw) // 2
    (tmp_path / "members.nii.gz").write_bytes(gzip.compress(raw[:half]) + gzip.compress(raw[half:]))
    back = read_volume(tmp_path / "members.nii.gz")
    assert np.array_equal(back.array, volume.array)


def test_one_channel_of_a_4d_file(tmp_path):
    volumes = [make_volume("oblique", seed=seed) for seed in range(3)]
    image = sitk.JoinSeries([sitk.GetImageFromArray(v.array) for v in volumes])
    sitk.WriteImage(image, str(tmp_path / "four.nii.gz"))
    assert np.array_equal(read_volume(tmp_path / "four.nii.gz", channel=1).array, volumes[1].array)
    with pytest.raises(DiffuGTSError, match=r"has no channel 3 \(it holds 3 volumes\)"):
        read_volume(tmp_path / "four.nii.gz", channel=3)
    write_volume(volumes[0], tmp_path / "three.nrrd")
    with pytest.raises(DiffuGTSError, match=r"has no channel 0 \(it holds 1 volume\)"):
        read_volume(tmp_path / "three.nrrd", channel=0)


@pytest.mark.parametrize("dimension", [2, 3, 4])
def test_read_grid_gives_the_grid_read_volume_gives(tmp_path, dimension):
    from diffugts.io import read_grid

    volume = make_volume("oblique45")  # rotated in the i-j plane, so its 2D slice is oblique too
    image = sitk.GetImageFromArray(volume.array)
    image.SetSpacing(volume.spacing)
    image.SetOrigin(volume.origin)
    image.SetDirection(volume.direction.ravel().tolist())
    if dimension == 2:
        image = image[:, :, 0]
    if dimension == 4:
        image = sitk.JoinSeries([image, image])
    sitk.WriteImage(image, str(tmp_path / "image.nrrd"))
    channel = 0 if dimension == 4 else None
    assert read_grid(tmp_path / "image.nrrd") == read_volume(tmp_path / "image.nrrd", channel=channel).grid
