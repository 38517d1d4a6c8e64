"""DICOM SEG output: references the source series, SNOMED CT codes from the terminology table, the algorithm
named; read back voxel for voxel by highdicom and by dcmqi's segimage2itkimage, for oblique, gantry-tilted and
enhanced multi-frame inputs, empty results, and FRACTIONAL probabilities."""

from __future__ import annotations

import shutil
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from dicom_cases import regular_positions, tilted_series, write_series
from geometry_cases import rotation
from pydicom.data import get_testdata_file
from seg_readback import by_dcmqi, by_highdicom

from diffugts import __version__
from diffugts.errors import DiffuGTSError
from diffugts.io import Volume, read_volume
from diffugts.io.dicom_seg import write_dicom_seg
from diffugts.terminology import describe_all

PROMPTS = ["kidney tumor", "liver lesion", "lung nodule"]


@pytest.fixture
def oblique(tmp_path) -> Volume:
    rng = np.random.default_rng(1)
    direction, spacing = rotation((1, 2, 3), 25), (0.7, 0.9, 2.5)
    positions = regular_positions((-60.0, 30.0, -250.0), direction, spacing, 6)
    write_series(tmp_path / "series", rng.integers(-1000, 1000, (6, 12, 10)).astype(np.int16), spacing, positions,
                 direction[:, 0], direction[:, 1])
    return read_volume(tmp_path / "series")


def _labels(shape) -> np.ndarray:
    labels = np.zeros(shape, np.uint8)
    labels[1:4, 2:6, 3:7] = 1
    labels[-2, -4:-2, 1:3] = 2
    return labels  # prompt 3 found nothing


def _assert_voxel_exact(path: Path, volume: Volume, labels: np.ndarray, tmp_path: Path) -> None:
    assert np.array_equal(by_highdicom(path, volume), labels)
    assert np.array_equal(by_dcmqi(path, volume, tmp_path / "dcmqi"), labels)


def test_binary_seg_references_the_series_codes_each_prompt_and_reads_back_voxel_exact(tmp_path, oblique):
    labels = _labels(oblique.array.shape)
    path = write_dicom_seg(tmp_path / "out" / "segmentation.dcm", oblique, describe_all(PROMPTS), labels=labels,
                           models={"backbone": "demo-ct", "refinement_head": "/home/me/refine_head.safetensors"})
    _assert_voxel_exact(path, oblique, labels, tmp_path)
    seg = hd.seg.segread(path)
    sources = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted((tmp_path / "series").iterdir())]
    assert seg.SegmentationType == "BINARY" and seg.Modality == "SEG"
    assert seg.StudyInstanceUID == sources[0].StudyInstanceUID
    assert seg.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    assert seg.PatientID == sources[0].PatientID
    referenced = seg.ReferencedSeriesSequence[0]
    assert referenced.SeriesInstanceUID == sources[0].SeriesInstanceUID
    assert {i.ReferencedSOPInstanceUID for i in referenced.ReferencedInstanceSequence} == \
        {s.SOPInstanceUID for s in sources}
    kidney = seg.get_segment_description(1)
    assert kidney.segment_label == "kidney tumor"
    assert (kidney.segmented_property_category.value, kidney.segmented_property_category.scheme_designator) == \
        ("49755003", "SCT")
    assert kidney.segmented_property_type.value == "108369006"  # Neoplasm
    assert [(c.value, c.meaning) for c in kidney.anatomic_regions] == [("64033007", "Kidney")]
    algorithm = kidney.algorithm_identification[0]
    assert algorithm.AlgorithmName == "DiffuGTS" and algorithm.AlgorithmVersion == __version__
    assert "demo-ct" in algorithm.AlgorithmParameters and "refine_head.safetensors" in algorithm.AlgorithmParameters
    assert "/home/me" not in algorithm.AlgorithmParameters  # no folders of the machine that made it
    lesion, nodule = seg.get_segment_description(2), seg.get_segment_description(3)
    assert lesion.segmented_property_type.value == "4147007"  # Mass
    assert nodule.anatomic_regions[0].meaning == "Lung"
    assert seg.number_of_segments == 3  # the empty third prompt is described, with no frames, and marked empty
    assert nodule.SegmentDescription == "empty: nothing was found for this prompt"
    assert "SegmentDescription" not in kidney


def test_result_with_no_voxels_writes_a_valid_seg_of_empty_frames(tmp_path, oblique):
    empty = np.zeros(oblique.array.shape, np.uint8)
    path = write_dicom_seg(tmp_path / "empty.dcm", oblique, describe_all(PROMPTS[:1]), labels=empty)
    assert int(hd.seg.segread(path).NumberOfFrames) == oblique.array.shape[0]
    _assert_voxel_exact(path, oblique, empty, tmp_path)


def test_fractional_seg_keeps_each_probability_within_one_step_of_255(tmp_path, oblique):
    rng = np.random.default_rng(2)
    maps = [rng.random(oblique.array.shape).astype(np.float32) for _ in range(2)]
    path = write_dicom_seg(tmp_path / "fractional.dcm", oblique, describe_all(PROMPTS[:2]), probabilities=maps)
    seg = hd.seg.segread(path)
    assert seg.SegmentationType == "FRACTIONAL" and seg.SegmentationFractionalType == "PROBABILITY"
    for number, expected in enumerate(maps, start=1):
        assert np.abs(by_highdicom(path, oblique, segment=number) - expected).max() <= 0.5 / 255 + 1e-6


def test_seg_of_a_gantry_tilted_series_lies_on_the_resampled_grid(tmp_path):
    tilted_series(tmp_path / "tilted", -12.0)
    volume = read_volume(tmp_path / "tilted")
    labels = _labels(volume.array.shape)
    path = write_dicom_seg(tmp_path / "tilted.dcm", volume, describe_all(PROMPTS[:2]), labels=labels)
    _assert_voxel_exact(path, volume, labels, tmp_path)


def test_seg_of_an_enhanced_multiframe_ct_references_its_one_instance(tmp_path):
    (tmp_path / "enhanced").mkdir()
    source = shutil.copy(get_testdata_file("eCT_Supplemental.dcm", download=False), tmp_path / "enhanced")
    volume = read_volume(tmp_path / "enhanced")
    labels = np.zeros(volume.array.shape, np.uint8)
    labels[1, 200:260, 300:380] = 1
    path = write_dicom_seg(tmp_path / "enhanced.dcm", volume, describe_all(["brain tumor"]), labels=labels)
    _assert_voxel_exact(path, volume, labels, tmp_path)
    instances = hd.seg.segread(path).ReferencedSeriesSequence[0].ReferencedInstanceSequence
    assert [i.ReferencedSOPInstanceUID for i in instances] == [pydicom.dcmread(source).SOPInstanceUID]


def test_seg_of_an_image_that_is_not_dicom_is_refused_in_one_line(tmp_path, oblique):
    nifti = Volume(oblique.array, oblique.spacing, oblique.origin, oblique.direction, source=str(tmp_path / "a.nii"))
    with pytest.raises(DiffuGTSError, match="a DICOM SEG needs a DICOM series as input"):
        write_dicom_seg(tmp_path / "x.dcm", nifti, describe_all(PROMPTS[:1]), labels=_labels(oblique.array.shape))
    assert not (tmp_path / "x.dcm").exists()


def test_without_highdicom_the_default_seg_is_left_out_with_a_warning_and_an_asked_one_refused(monkeypatch, oblique,
                                                                                               tmp_path):
    from types import SimpleNamespace

    from diffugts.io import dicom_seg

    monkeypatch.setattr(dicom_seg, "highdicom_installed", lambda: False)
    result = SimpleNamespace(findings=[], warnings=[], models={})
    assert dicom_seg.dicom_seg_writers(tmp_path, oblique, result, lambda: _labels(oblique.array.shape), None) == {}
    assert len(result.warnings) == 1 and "pip install 'diffugts[dicom]'" in result.warnings[0]
    with pytest.raises(DiffuGTSError, match="--dicom-seg fractional needs the highdicom package"):
        dicom_seg.check_dicom_seg("fractional", oblique)


REAL_DICOM = Path(__file__).resolve().parents[2] / "shared" / "data" / "train" / "dicom" / "ts_example_ct_dicom"


@pytest.mark.skipif(not REAL_DICOM.is_dir(), reason="../shared/data/train/dicom/ts_example_ct_dicom not found")
def test_real_series_whose_uids_were_emptied_gets_no_seg_and_says_why(tmp_path):
    from types import SimpleNamespace

    from diffugts.io.dicom_seg import check_dicom_seg, dicom_seg_writers

    volume = read_volume(REAL_DICOM)  # de-identified with Study, Series and SOP Instance UIDs left empty
    with pytest.raises(DiffuGTSError, match="the series has no Study Instance UID, Series Instance UID, SOP Instance "
                                            "UID .* so a DICOM SEG cannot reference it"):
        check_dicom_seg("binary", volume)
    result = SimpleNamespace(findings=[], warnings=[], models={})
    assert dicom_seg_writers(tmp_path, volume, result, lambda: None, None) == {}
    assert len(result.warnings) == 1 and "segmentation.dcm (DICOM SEG) not written" in result.warnings[0]
