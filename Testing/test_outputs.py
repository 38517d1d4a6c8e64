"""Compact outputs and the choice of what to write: [0, 1] maps as 8-bit NIfTI with a header scale that SimpleITK,
nibabel, diffugts and Slicer's loader all apply; the pseudo-healthy scan in the input's pixel type; --outputs
for segment, batch and the Slicer panel, with per-use defaults."""

from __future__ import annotations

import gzip
import json
import struct

import nibabel
import numpy as np
import pytest
import SimpleITK as sitk

from diffugts.data.phantom import make_phantom
from diffugts.errors import DiffuGTSError
from diffugts.io import read_grid, read_volume
from diffugts.io.compact import UNIT_SLOPE, in_pixel_type, quantize_unit, write_compressed, write_unit_map
from diffugts.segment import PRESETS
from diffugts.segment.job import SegmentRequest
from diffugts.segment.outputs import DEFAULTS, KINDS, output_files, output_names, parse_outputs
from diffugts.segment.write import write_outputs, write_result
from geometry_cases import make_volume

STEP = 1 / 255
HALF_STEP = 0.5 / 255 + 1e-6  # rounding to the nearest step, plus float32's own error


def unit_values(shape=(7, 9, 11), seed=0) -> np.ndarray:
    """Values in [0, 1] including both ends and values just off a step."""
    values = np.random.default_rng(seed).random(shape, dtype=np.float32)
    values.flat[:4] = [0.0, 1.0, 0.5 * STEP, 1.0 - 0.49 * STEP]
    return values


def sitk_array(path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


@pytest.mark.parametrize("direction", ["oblique", "LPS", "RAS"])
def test_a_unit_map_reads_back_within_half_a_step_in_every_reader(tmp_path, direction):
    volume = make_volume(direction, "float32")
    values = unit_values(volume.array.shape)
    path = write_unit_map(volume.like(values), tmp_path / "map.nii.gz")
    with gzip.open(path) as stream:  # stored as 8 bits, not 32
        header = stream.read(348)
    assert struct.unpack("<h", header[70:72])[0] == 2 and struct.unpack("<h", header[72:74])[0] == 8

    itk = sitk_array(path)
    nib_image = nibabel.load(path)
    nib = np.asarray(nib_image.get_fdata()).transpose(2, 1, 0)  # nibabel indexes [i, j, k]
    ours = read_volume(path)
    for array in (itk, nib, ours.array):
        assert array.shape == values.shape
        assert np.abs(array - values).max() <= HALF_STEP
        assert array.min() >= 0.0 and array.max() <= 1.0
    assert ours.grid.matches(volume.grid, tolerance=1e-4) and read_grid(path).matches(volume.grid, tolerance=1e-4)
    assert np.allclose(nib_image.affine, volume.grid.ijk_to_ras, atol=1e-4)  # nibabel's RAS affine, same grid


def test_a_unit_map_is_a_fraction_of_the_float32_file(tmp_path):
    volume = make_volume("oblique", "float32", shape_kji=(40, 64, 64))
    smooth = np.linspace(0, 1, volume.array.size, dtype=np.float32).reshape(volume.array.shape) ** 3
    compact = write_unit_map(volume.like(smooth), tmp_path / "compact.nii.gz")
    plain = write_compressed(volume.like(smooth), tmp_path / "float.nii.gz")
    assert compact.stat().st_size * 4 < plain.stat().st_size


def test_quantizing_clips_and_rounds_to_the_nearest_step():
    assert quantize_unit(np.array([-0.5, 0.0, 0.49 * STEP, 0.51 * STEP, 1.0, 7.0])).tolist() == [0, 0, 0, 1, 255, 255]
    assert 255 * np.float64(np.float32(UNIT_SLOPE)) <= 1.0 and 255 * np.float32(UNIT_SLOPE) <= 1.0


def test_formats_without_a_header_scale_get_the_quantized_values_as_float32(tmp_path):
    volume = make_volume("oblique", "float32")
    values = unit_values(volume.array.shape)
    for name in ("map.nrrd", "map.mha", "map.nii"):
        array = sitk_array(write_unit_map(volume.like(values), tmp_path / name))
        assert np.abs(array - values).max() <= HALF_STEP and array.max() <= 1.0, name


def test_pixel_type_conversion_rounds_and_clips():
    values = np.array([-40000.4, -1000.6, 0.4, 12.5, 40000.0], np.float32)
    assert in_pixel_type(values, np.int16).tolist() == [-32768, -1001, 0, 12, 32767]
    assert in_pixel_type(values, np.uint8).tolist() == [0, 0, 0, 12, 255]
    assert in_pixel_type(values, np.float32).dtype == np.float32


def test_slicers_own_loader_applies_the_scale(tmp_path):
    slicer = pytest.importorskip("slicer", reason="pip install -e '.[slicer-test]' (slicer-core)")
    import vtk
    from slicer_support import node_array

    from DiffuGTSSlicerLib import scene_io

    # a right-handed oblique grid: Slicer flips the k axis of a left-handed one (same voxels in the world)
    volume = make_volume("oblique45", "float32")
    values = unit_values(volume.array.shape)
    path = write_unit_map(volume.like(values), tmp_path / "attention_1.nii.gz")
    node = scene_io.load_volume(slicer.vtkMRMLScene(), path, "heat map")
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    assert np.allclose([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)], volume.grid.ijk_to_ras,
                       atol=1e-4)
    loaded = node_array(node)
    assert loaded.dtype == np.float32 and loaded.shape == values.shape
    assert np.abs(loaded - values).max() <= HALF_STEP and loaded.min() >= 0.0 and loaded.max() <= 1.0


# -- choosing the outputs ---------------------------------------------------------------------------------------
def test_output_kinds_parse_with_one_line_errors():
    assert parse_outputs("attention, Segmentation") == ("segmentation", "attention")
    assert parse_outputs("all") == KINDS and parse_outputs(["pseudo-healthy"]) == ("pseudo_healthy",)
    with pytest.raises(DiffuGTSError, match="unknown output kind.*heatmap") as error:
        parse_outputs("segmentation,heatmap")
    assert "attention" in error.value.hint
    assert output_names(2, outputs=("attention", "labels")) == ["labels.nii.gz", "attention_1.nii.gz",
                                                                "attention_2.nii.gz", "report.json"]


def test_a_request_carries_its_outputs_through_json():
    request = SegmentRequest(("kidney tumor",), outputs="labels,segmentation")
    assert request.outputs == ("segmentation", "labels")
    assert SegmentRequest.from_json(request.to_json()) == request
    assert "outputs" not in SegmentRequest(("kidney tumor",)).to_json()  # an earlier batch's batch.json still matches
    assert SegmentRequest(("x",)).outputs_or("batch") == DEFAULTS["batch"] == ("segmentation", "labels")
    assert SegmentRequest(("x",)).outputs_or("segment") == KINDS
    with pytest.raises(DiffuGTSError, match="unknown output kind"):
        SegmentRequest.from_json({"prompts": ["x"], "outputs": ["probabilities"]})
    with pytest.raises(DiffuGTSError, match="list of output kinds"):
        SegmentRequest.from_json({"prompts": ["x"], "outputs": [3]})


@pytest.fixture(scope="module")
def ct_phantom():
    return make_phantom("kidney tumor", "CT", (40, 36, 28), seed=3)


@pytest.fixture(scope="module")
def phantom_result(segmenter, ct_phantom):
    return segmenter(ct_phantom.image, ["kidney tumor", "liver tumor"], settings=PRESETS["fast"])


@pytest.mark.slow  # the demo pipeline on a phantom
def test_every_output_reads_back_faithfully(phantom_result, ct_phantom, tmp_path):
    image = ct_phantom.image
    assert image.array.dtype == np.int16
    written = write_result(phantom_result, image, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(output_names(2))
    first, second = phantom_result.findings
    maps = {"probability_1": first.probability, "attention_2": second.attention, "uncertainty": phantom_result.uncertainty}
    for name, volume in maps.items():
        back = read_volume(written[name])
        assert back.grid.matches(image.grid, tolerance=1e-4), name
        assert np.abs(back.array - volume.array).max() <= HALF_STEP, name
    pseudo = sitk.ReadImage(str(written["pseudo_healthy"]))
    assert pseudo.GetPixelID() == sitk.sitkInt16  # the input's pixel type, whole HU
    assert np.abs(sitk.GetArrayFromImage(pseudo) - phantom_result.pseudo_healthy.array).max() <= 0.5 + 1e-3


@pytest.mark.slow  # the demo pipeline on a phantom
def test_only_the_chosen_outputs_are_written_and_the_report_names_exactly_them(phantom_result, ct_phantom, tmp_path):
    chosen = ("segmentation", "attention")
    written = write_result(phantom_result, ct_phantom.image, tmp_path, outputs=chosen)
    names = output_names(2, outputs=chosen)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    assert sorted(path.name for path in written.values()) == sorted(names)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["outputs"] == output_files(2, chosen)
    assert [entry["files"] for entry in report["prompts"]] == [{"attention": "attention_1.nii.gz"},
                                                               {"attention": "attention_2.nii.gz"}]


@pytest.mark.slow  # the demo pipeline on a phantom
def test_outputs_left_for_later_are_named_but_written_only_when_asked(phantom_result, ct_phantom, tmp_path):
    eager = write_result(phantom_result, ct_phantom.image, tmp_path / "eager")
    written, later = write_outputs(phantom_result, ct_phantom.image, tmp_path / "lazy",
                                   later=("probability", "attention", "pseudo_healthy", "uncertainty"))
    assert sorted(later) == ["attention_1", "attention_2", "probability_1", "probability_2", "pseudo_healthy",
                             "uncertainty"]
    assert not any((tmp_path / "lazy" / eager[name].name).exists() for name in later)
    report = json.loads((tmp_path / "lazy" / "report.json").read_text())
    assert set(report["outputs"]) == set(eager)  # the report names them already
    for name, write in later.items():
        path = write()
        assert path.name == eager[name].name
        assert np.array_equal(sitk_array(path), sitk_array(eager[name])), name


@pytest.mark.slow  # the demo pipeline on a phantom
def test_the_batch_default_is_the_label_map_and_segmentation(segmenter, ct_phantom, tmp_path):
    from diffugts.batch.cases import list_cases
    from diffugts.batch.worker import segment_case
    from diffugts.io import write_volume

    write_volume(ct_phantom.image, tmp_path / "in" / "case.nii.gz")
    (case,) = list_cases(tmp_path / "in")
    request = {"prompts": ["kidney tumor"], "quality": "fast"}
    assert segment_case(segmenter, case, request, tmp_path / "out").status == "done"
    assert sorted(p.name for p in (tmp_path / "out" / case.case_id).iterdir()) == sorted(
        output_names(1, outputs=DEFAULTS["batch"]))
    assert segment_case(segmenter, case, {**request, "outputs": ["all"]}, tmp_path / "all").status == "done"
    assert len(list((tmp_path / "all" / case.case_id).iterdir())) == len(output_names(1))


def test_the_slicer_panel_asks_only_for_what_it_loads(tmp_path):
    pytest.importorskip("slicer", reason="pip install -e '.[slicer-test]' (slicer-core)")
    import slicer_support  # noqa: F401  (puts the module's folder on sys.path)
    from DiffuGTSSlicerLib.command import segment_arguments
    from DiffuGTSSlicerLib.parameters import Parameters

    from diffugts.cli import build_parser

    def outputs(**choices) -> tuple[str, ...]:
        arguments = segment_arguments(tmp_path / "in.nrrd", tmp_path / "out", Parameters(prompts=["x"], **choices))
        args = build_parser().parse_args(arguments)
        return SegmentRequest(tuple(args.prompt), outputs=args.outputs).outputs

    assert outputs() == ("segmentation", "attention")
    assert outputs(load_heat_map=False) == ("segmentation",)
    assert outputs(load_heat_map=False, load_pseudo_healthy=True, load_uncertainty=True) == (
        "segmentation", "pseudo_healthy", "uncertainty")


def test_an_unknown_output_kind_stops_the_command_in_one_line_before_any_model(tmp_path, capsys):
    from diffugts.cli import main
    from diffugts.io import write_volume

    image = write_volume(make_volume("oblique"), tmp_path / "ct.nii.gz")
    code = main(["--progress", "none", "segment", str(image), "--prompt", "kidney tumor", "--outputs", "heatmap",
                 "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1 and "unknown output kind(s): heatmap" in error
    assert not (tmp_path / "out").exists()
