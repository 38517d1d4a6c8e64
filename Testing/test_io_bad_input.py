"""Every bad input gets one clear message naming the file, the problem and what to do."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from bad_inputs import BAD_INPUTS
from geometry_cases import make_volume

from diffugts.errors import InputError
from diffugts.io import read_volume, write_volume


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_raises_an_actionable_error(tmp_path, case):
    make, fragment = BAD_INPUTS[case]
    path = make(tmp_path)
    with pytest.raises(InputError) as error:
        read_volume(path)
    message = str(error.value)
    assert fragment in message
    assert message.startswith(str(path))
    assert error.value.hint, "every input error says what to do"


@pytest.mark.parametrize("case", ["missing", "truncated_nii_gz_tail", "4d", "nan"])
def test_cli_reports_bad_input_in_one_line_without_traceback(tmp_path, case):
    make, fragment = BAD_INPUTS[case]
    path = make(tmp_path)
    result = subprocess.run([sys.executable, "-m", "diffugts", "info", str(path)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"diffugts: error: {path}: ") and fragment in lines[0]


def test_debug_flag_shows_the_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "diffugts", "--debug", "info", str(tmp_path / "nowhere.nrrd")],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "InputError" in result.stderr


def test_volume_beyond_the_memory_budget_is_refused_before_loading(tmp_path, monkeypatch):
    path = write_volume(make_volume("LPS", shape_kji=(64, 64, 64)), tmp_path / "big.nrrd")
    monkeypatch.setenv("DIFFUGTS_MEMORY_BUDGET_GB", "0.0001")
    with pytest.raises(InputError, match=r"reading this volume of 64x64x64 voxels needs about .* more than the "
                                         r"memory budget of 104\.9 KB") as error:
        read_volume(path)
    assert "Crop it to the region of interest" in str(error.value)


@pytest.mark.parametrize("value", ["lots", "nan", "inf", "-2", "0"])
def test_memory_budget_setting_must_be_a_positive_number(tmp_path, monkeypatch, value):
    from diffugts.errors import DiffuGTSError

    path = write_volume(make_volume("LPS"), tmp_path / "a.nrrd")
    monkeypatch.setenv("DIFFUGTS_MEMORY_BUDGET_GB", value)
    with pytest.raises(DiffuGTSError, match=f"DIFFUGTS_MEMORY_BUDGET_GB='{value}' is not a positive number of GB"):
        read_volume(path)


def test_finite_float_volume_is_accepted(tmp_path):
    volume = make_volume("oblique", "float32")
    assert np.array_equal(read_volume(write_volume(volume, tmp_path / "ok.nrrd")).array, volume.array)


def test_a_gzip_stream_inflating_past_its_header_is_read_only_as_far_as_the_header_says(tmp_path, monkeypatch):
    """Decompression amplification: a small .nii.gz whose header names a few voxels but whose stream then
    inflates to hundreds of MB of zeros (the trailer disagrees) must not be decompressed to the end."""
    import gzip

    import diffugts.io.read as read_module
    from diffugts.io.nifti_header import open_nifti

    volume = make_volume("LPS", "int16", (4, 5, 6), seed=3)
    plain = tmp_path / "small.nii"
    write_volume(volume, plain)
    bomb = tmp_path / "bomb.nii.gz"
    zeros = bytes(1 << 24)
    with gzip.open(bomb, "wb", compresslevel=9) as stream:
        stream.write(plain.read_bytes())
        for _ in range(16):  # 256 MB of zeros after the voxels: about 250 KB on disk
            stream.write(zeros)
    assert bomb.stat().st_size < 1 << 20
    inflated = []  # bytes read from each opened stream

    class Counting:
        def __init__(self, stream):
            self.stream = stream
            inflated.append(0)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.stream.close()

        def read(self, size=-1):
            chunk = self.stream.read(size)
            inflated[-1] += len(chunk)
            return chunk

    monkeypatch.setattr(read_module, "open_nifti", lambda path: Counting(open_nifti(path)))
    np.testing.assert_array_equal(read_volume(bomb).array, volume.array)
    assert inflated and max(inflated) <= plain.stat().st_size  # the header's bytes, not 256 MB
