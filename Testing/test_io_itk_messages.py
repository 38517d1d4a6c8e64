"""What ITK/GDCM print to fd 2 never reaches the user as a wall of text: one line per error or warning."""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from bad_inputs import _cut, _noise

from diffugts.errors import InputError
from diffugts.io import read_grid, read_volume
from diffugts.io.itk_messages import captured_itk_messages, clean_itk_text
from diffugts.io.nifti_header import parse_nifti_header

SROW_AT = 280  # NIfTI-1: srow_x, srow_y, srow_z, 4 float32 each
SHEARED = (-1, -0.6, 0, 0, 0, -0.8, 0, 0, 0, 0, 2, 0)  # j axis at 53 degrees to i; column lengths 1, 1, 2
SCALED = (-1.5, 0, 0, 0, 0, -1, 0, 0, 0, 0, 2, 0)  # i column 1.5 long where pixdim says 1: ITK warns


def _nifti(path: Path, srow: tuple[float, ...] | None = None, qform_code: int | None = None) -> Path:
    """A small NIfTI-1 written by ITK, its sform rows (and qform_code) then patched as another tool might write them."""
    image = sitk.GetImageFromArray(np.arange(120, dtype=np.int16).reshape(4, 5, 6))
    image.SetSpacing((1.0, 1.0, 2.0))
    plain = path.with_name(path.name.removesuffix(".gz"))
    sitk.WriteImage(image, str(plain))
    data = bytearray(plain.read_bytes())
    if srow is not None:
        struct.pack_into("<12f", data, SROW_AT, *srow)
    if qform_code is not None:
        struct.pack_into("<h", data, 252, qform_code)
    if path.suffix == ".gz":
        plain.unlink()
        path.write_bytes(gzip.compress(bytes(data)))
    else:
        path.write_bytes(bytes(data))
    return path


def _nifti2(path: Path) -> Path:
    """A minimal little-endian NIfTI-2 file (540-byte header, no extension) of 4x4x3 int16 zeros."""
    header = bytearray(544)
    struct.pack_into("<i8s2h8q", header, 0, 540, b"n+2\0\r\n\x1a\n", 4, 16, 3, 4, 4, 3, 1, 1, 1, 1)
    struct.pack_into("<8d", header, 104, 1, 1, 1, 1, 1, 1, 1, 1)
    struct.pack_into("<q", header, 168, 544)
    struct.pack_into("<2i", header, 344, 0, 1)
    struct.pack_into("<12d", header, 400, -1, 0, 0, 0, 0, -1, 0, 0, 0, 0, 1, 0)
    struct.pack_into("<i", header, 500, 2)  # xyzt_units: mm
    path.write_bytes(bytes(header) + bytes(4 * 4 * 3 * 2))
    return path


def _truncated_mha(folder: Path) -> Path:
    return _cut(folder / "half.mha", _noise((6, 20, 20)), 0.9)


def _empty_folder(folder: Path) -> Path:
    (folder / "empty").mkdir()
    return folder / "empty"


def _folder_with_notes(folder: Path) -> Path:
    (folder / "notes").mkdir()
    (folder / "notes" / "readme.txt").write_text("no images here")
    return folder / "notes"


BAD = {
    # name: (make(folder) -> path, fragment of the one-line error)
    "truncated_mha": (_truncated_mha, "truncated or corrupt"),
    "empty_folder": (_empty_folder, "folder holds no DICOM series"),
    "folder_without_dicom": (_folder_with_notes, "folder holds no DICOM series"),
    "sheared_sform": (lambda d: _nifti(d / "sheared.nii", SHEARED), "sform is not orthonormal"),
    "sheared_sform_gz": (lambda d: _nifti(d / "sheared.nii.gz", SHEARED), "sform is not orthonormal"),
    "sheared_sform_no_qform": (lambda d: _nifti(d / "noq.nii.gz", SHEARED, qform_code=0), "sform is not orthonormal"),
    "nifti2": (lambda d: _nifti2(d / "two.nii"), "NIfTI-2 files cannot be read"),
}


def _info(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "diffugts", "info", str(path)], capture_output=True, text=True)


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_with_nothing_from_itk(tmp_path, capfd, case):
    make, fragment = BAD[case]
    path = make(tmp_path)
    capfd.readouterr()
    with pytest.raises(InputError, match=fragment) as error:
        read_volume(path)
    assert str(error.value).startswith(f"{path}: ") and error.value.hint
    assert capfd.readouterr() == ("", ""), "ITK's own text was let through to fd 1 or 2"

    result = _info(path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"diffugts: error: {path}: ") and fragment in lines[0]
    assert result.stdout == ""


def test_sheared_sform_error_gives_the_deviation_and_how_to_fix_it(tmp_path):
    with pytest.raises(InputError) as error:
        read_volume(_nifti(tmp_path / "sheared.nii", SHEARED))
    message = str(error.value)
    assert "skewed (sheared)" in message and "deviation 0.6," in message
    assert "Resample Scalar/Vector/DWI Volume" in message


def test_sheared_sform_is_refused_by_read_grid_too(tmp_path):
    with pytest.raises(InputError, match="sform is not orthonormal"):
        read_grid(_nifti(tmp_path / "sheared.nii", SHEARED))


def test_sform_that_is_only_rotated_and_scaled_is_read_with_its_direction(tmp_path):
    c, s = np.cos(0.3), np.sin(0.3)  # rotation about z by 0.3 rad; i, j, k spacings 1, 1, 2 as pixdim says
    path = _nifti(tmp_path / "oblique.nii.gz", (-c, s, 0, 0, -s, -c, 0, 0, 0, 0, 2, 0), qform_code=0)
    volume = read_volume(path)
    assert np.allclose(volume.direction, [[c, -s, 0], [s, c, 0], [0, 0, 1]], atol=1e-6)
    assert volume.spacing == (1.0, 1.0, 2.0) and volume.warnings == []


def test_sform_scales_that_disagree_with_pixdim_become_one_warning(tmp_path, capfd):
    path = _nifti(tmp_path / "scaled.nii", SCALED)
    capfd.readouterr()
    volume = read_volume(path)
    assert capfd.readouterr() == ("", "")
    assert volume.warnings == [f"{path}: ITK: the file has unexpected scales in sform"]

    result = _info(path)
    assert result.returncode == 0 and result.stderr == ""
    assert f"  warning      {path}: ITK: the file has unexpected scales in sform\n" in result.stdout
    assert "WARNING: In" not in result.stdout and "0x" not in result.stdout


def test_fd2_is_restored_after_reads(tmp_path, capfd):
    good = _nifti(tmp_path / "good.nii")
    with pytest.raises(InputError):
        read_volume(_truncated_mha(tmp_path))
    read_volume(good)
    os.write(2, b"still the real stderr\n")
    sys.stderr.write("python too\n")
    sys.stderr.flush()
    assert capfd.readouterr().err == "still the real stderr\npython too\n"


def test_nested_captures_each_get_their_own_text(tmp_path, capfd):
    outer_file, inner_file = (_nifti(tmp_path / name, SCALED) for name in ("outer.nii", "inner.nii"))
    with captured_itk_messages() as outer:
        sitk.ReadImage(str(outer_file))
        with captured_itk_messages() as inner:
            sitk.ReadImage(str(inner_file))
    assert inner.lines() == [f"{inner_file} has unexpected scales in sform"]
    assert outer.lines() == [f"{outer_file} has unexpected scales in sform"]
    assert capfd.readouterr().err == ""


def test_another_threads_output_never_becomes_this_volumes_warnings(tmp_path, capfd):
    """A server's other threads print while a volume is read: before, their lines (ITK-shaped or not) were
    caught with fd 2 and became the volume's warnings; now they reach stderr, and the volume has only its own."""
    good, scaled = _nifti(tmp_path / "good.nii"), _nifti(tmp_path / "scaled.nii", SCALED)
    stop = threading.Event()

    def chatter() -> None:
        while not stop.is_set():
            os.write(2, b"WARNING: In other.cxx, line 1\nOther (0x1): another thread's line\n\n")
            time.sleep(0.0005)

    def read_scaled() -> list[str]:
        return read_volume(scaled).warnings

    threads = [threading.Thread(target=chatter) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            scaled_warnings = [pool.submit(read_scaled) for _ in range(10)]
            for _ in range(10):
                assert read_volume(good).warnings == []
            for future in scaled_warnings:
                assert future.result() == [f"{scaled}: ITK: the file has unexpected scales in sform"]
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert "another thread's line" in capfd.readouterr().err  # printed, not swallowed


def test_unexpected_failure_lets_itk_text_through_but_input_errors_do_not(capfd):
    with pytest.raises(InputError), captured_itk_messages():
        os.write(2, b"said before a known problem\n")
        raise InputError("bad")
    assert capfd.readouterr().err == ""
    with pytest.raises(ZeroDivisionError), captured_itk_messages():
        os.write(2, b"said before a bug\n")
        1 / 0  # noqa: B018
    assert capfd.readouterr().err == "said before a bug\n"


@pytest.mark.parametrize("closed", [(2,), (0, 2)])  # with fd 0 closed too, the temporary file does not get fd 2
def test_capture_works_when_fd2_is_closed_and_leaves_it_closed(closed, tmp_path):
    scaled = _nifti(tmp_path / "scaled.nii", SCALED)
    script = textwrap.dedent(f"""
        import os
        import SimpleITK as sitk
        from diffugts.io.itk_messages import captured_itk_messages
        for fd in {closed}:
            os.close(fd)
        with captured_itk_messages() as said:
            os.write(2, b"x")
            sitk.ReadImage({str(scaled)!r})
        try:
            os.fstat(2)
        except OSError:
            print("closed", said.lines())
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stdout == f"closed ['{scaled} has unexpected scales in sform']\n", result.stdout + result.stderr


def test_reading_works_without_temporary_space(tmp_path, monkeypatch):
    good = _nifti(tmp_path / "good.nii")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    assert read_volume(good).size == (6, 5, 4)


def test_library_text_is_printed_after_the_block_unless_an_input_error_explains_it(tmp_path):
    """C libraries print to fd 2 directly: kept aside during the block, in order after it, dropped when the
    block ends with a one-line InputError (the library's account of the same failure)."""
    log = tmp_path / "log.txt"
    script = textwrap.dedent("""
        import os
        from diffugts.errors import InputError
        from diffugts.io.itk_messages import captured_itk_messages
        with captured_itk_messages():
            os.write(2, b'inside ')
        os.write(2, b'after ')
        try:
            with captured_itk_messages():
                os.write(2, b'MetaImage: data not read completely')
                raise InputError('truncated')
        except InputError:
            os.write(2, b'end')
    """)
    with open(log, "wb") as handle:
        subprocess.run([sys.executable, "-c", script], stderr=handle, check=True)
    assert log.read_text() == "inside after end"


def test_itk_and_gdcm_boilerplate_is_stripped_and_repeats_dropped():
    text = (
        "WARNING: In /tmp/SimpleITK-build/ITK/Modules/IO/NIFTI/src/itkNiftiImageIO.cxx, line 2008\n"
        "NiftiImageIO (0x5625fef58a40): a.nii has unexpected scales in sform\n\n"
        "WARNING: In /tmp/SimpleITK-build/ITK/Modules/IO/NIFTI/src/itkNiftiImageIO.cxx, line 2008\n"
        "NiftiImageIO (0x5625ff0df430): a.nii has unexpected scales in sform\n\n"
        "Warning: In /src/gdcmPixmapReader.cxx, line 123, function bool gdcm::PixmapReader::Read()\n"
        "Could not read\npixel data\n\n"
        "MetaImage: M_ReadElementsData: data not read completely\n   ideal = 36000 : actual = 32370\n"
    )
    assert clean_itk_text(text) == [
        "a.nii has unexpected scales in sform",
        "Could not read pixel data",
        "MetaImage: M_ReadElementsData: data not read completely ideal = 36000 : actual = 32370",
    ]


def test_nifti_header_parser_reads_both_byte_orders_and_refuses_other_bytes(tmp_path):
    little = (_nifti(tmp_path / "a.nii", SHEARED)).read_bytes()[:540]
    header = parse_nifti_header(little)
    assert header.vox_offset == 352 and header.sform_code > 0
    assert np.allclose(header.sform.ravel(), SHEARED)
    big = bytearray(little)
    for offset, fmt in ((0, "i"), (108, "f"), (254, "h")):
        struct.pack_into(">" + fmt, big, offset, struct.unpack_from("<" + fmt, little, offset)[0])
    struct.pack_into(">12f", big, SROW_AT, *SHEARED)
    assert np.allclose(parse_nifti_header(bytes(big)).sform.ravel(), SHEARED)
    assert parse_nifti_header(_nifti2(tmp_path / "two.nii").read_bytes()).sform_code == 1
    assert parse_nifti_header(little[:300]) is None
    assert parse_nifti_header(b"\x1f\x8b" + bytes(600)) is None
