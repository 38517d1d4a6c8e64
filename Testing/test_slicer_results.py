"""Results loading against real MRML (slicer-core), following the engine's report.json: segments with names, colors
and terminology on the input's exact oblique grid, presence scores and mL from the report, heat maps with their
color table, warnings passed on, no silent overwrite, missing files named, nothing left of a failed load."""

from __future__ import annotations

import json

import numpy as np
import pytest
from slicer_support import add_oblique_volume, node_array, segment_mask, slicer_core

slicer = slicer_core()

from diffugts.io import Segment, read_volume, write_segmentation, write_volume  # noqa: E402
from diffugts.segment.write import REPORT_SCHEMA, output_names  # noqa: E402
from diffugts.terminology import describe_all  # noqa: E402
from DiffuGTSSlicerLib import results, scene_io  # noqa: E402
from DiffuGTSSlicerLib.heat_map import COLOR_NODE_NAME  # noqa: E402
from DiffuGTSSlicerLib.parameters import Parameters  # noqa: E402
from DiffuGTSSlicerLib.results import ResultsError, load_results, segment_names  # noqa: E402

PROMPTS = ["kidney tumor", "mass in the pancreatic head"]
PRESENCE = [0.93, 0.07]
VOLUMES_ML = [0.135, 0.0325]
WARNINGS = ["prompt 'mass in the pancreatic head' does not look like a finding (relevance 0.10)"]
SHAPE = (6, 9, 11)  # k, j, i: every axis a different length, so a transposed mask cannot pass


@pytest.fixture
def scene():
    return slicer.vtkMRMLScene()


@pytest.fixture
def input_volume(scene):
    rng = np.random.default_rng(0)
    return add_oblique_volume(scene, rng.integers(-100, 200, SHAPE).astype(np.int16))


def masks() -> list[np.ndarray]:
    first, second = np.zeros(SHAPE, bool), np.zeros(SHAPE, bool)
    first[1:4, 2:5, 3:9] = True       # 3 * 3 * 6 = 54 voxels
    second[4:6, 6:9, 0:2] = True      # 2 * 3 * 2 = 12 voxels
    second[2, 7, 9] = True            # a lone voxel near a corner: catches any flip
    return [first, second]


def engine_report() -> dict:
    """report.json as diffugts/segment/write.py writes it (the fields the module reads), files from output_names()."""
    descriptions = describe_all(PROMPTS)
    prompts = [{"prompt": text, "segment": d.name, "label": n, "organ": None, "presence": presence,
                "volume_ml": volume, "files": {"probability": f"probability_{n}.nii.gz",
                                               "attention": f"attention_{n}.nii.gz"}}
               for n, (text, d, presence, volume) in enumerate(zip(PROMPTS, descriptions, PRESENCE, VOLUMES_ML), 1)]
    outputs = {name.split(".")[0]: name for name in output_names(len(PROMPTS))}
    return {"schema": REPORT_SCHEMA, "prompts": prompts, "outputs": outputs, "timings_s": {"total": 1.0},
            "warnings": WARNINGS}


def write_engine_outputs(out_dir, input_volume, *, complete: bool = True) -> None:
    """What `diffugts segment` writes, made by the engine's own writers from the exported input."""
    out_dir.mkdir()
    scene_io.export_volume(input_volume, out_dir / "input.nrrd")
    reference = read_volume(out_dir / "input.nrrd")
    descriptions = describe_all(PROMPTS)
    segments = [Segment(d.name, m, d.color, d.terminology) for d, m in zip(descriptions, masks())]
    write_segmentation(out_dir / "segmentation.seg.nrrd", reference, segments)
    heat = np.linspace(0, 1, np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)
    write_volume(reference.like(heat), out_dir / "attention_1.nii.gz")
    if complete:
        for name in ("attention_2", "probability_1", "probability_2", "uncertainty"):
            write_volume(reference.like(heat), out_dir / f"{name}.nii.gz")
        write_volume(reference, out_dir / "pseudo_healthy.nii.gz")
        write_volume(reference.like(masks()[0].astype(np.uint8)), out_dir / "labels.nii.gz")
        (out_dir / "quicklook.png").write_bytes(b"")
    (out_dir / "report.json").write_text(json.dumps(engine_report()))  # last, as the engine writes it


def test_segments_land_voxel_exact_on_the_oblique_input_grid(tmp_path, scene, input_volume):
    write_engine_outputs(tmp_path / "out", input_volume)
    loaded = load_results(tmp_path / "out", input_volume, Parameters(prompts=PROMPTS))
    segmentation = loaded.segmentation_node.GetSegmentation()
    assert segmentation.GetNumberOfSegments() == 2
    for row, expected in zip(loaded.rows, masks()):
        np.testing.assert_array_equal(segment_mask(loaded.segmentation_node, row.segment_id, input_volume), expected)
    assert [row.volume_ml for row in loaded.rows] == VOLUMES_ML


def test_each_segment_has_the_prompt_name_color_and_mass_or_neoplasm_terminology(tmp_path, scene, input_volume):
    write_engine_outputs(tmp_path / "out", input_volume)
    loaded = load_results(tmp_path / "out", input_volume, Parameters(prompts=PROMPTS))
    segmentation = loaded.segmentation_node.GetSegmentation()
    kidney, pancreas = (segmentation.GetSegment(row.segment_id) for row in loaded.rows)
    assert (kidney.GetName(), pancreas.GetName()) == tuple(PROMPTS)
    assert kidney.GetColor() == pytest.approx(describe_all(PROMPTS)[0].color)
    assert "SCT^108369006^Neoplasm" in kidney.GetTerminology() and "SCT^64033007^Kidney" in kidney.GetTerminology()
    assert "SCT^4147007^Mass" in pancreas.GetTerminology() and "SCT^15776009^Pancreas" in pancreas.GetTerminology()
    assert not kidney.GetNameAutoGenerated() and not kidney.GetColorAutoGenerated()


def test_results_table_has_presence_scores_volumes_and_the_warnings_from_the_report(tmp_path, scene, input_volume):
    write_engine_outputs(tmp_path / "out", input_volume)
    loaded = load_results(tmp_path / "out", input_volume, Parameters(prompts=PROMPTS))
    assert [row.presence for row in loaded.rows] == PRESENCE and loaded.warnings == WARNINGS
    table = loaded.table_node
    assert table.GetNumberOfRows() == 2 and table.GetColumnName(1) == "Presence score"
    assert [table.GetCellText(0, c) for c in range(3)] == ["kidney tumor", "0.93", "0.14"]
    assert [table.GetCellText(1, c) for c in range(3)] == ["mass in the pancreatic head", "0.07", "0.03"]
    assert loaded.missing == []


def test_the_module_reads_the_report_schema_the_engine_writes():
    assert results.REPORT_SCHEMA == REPORT_SCHEMA


def test_heat_maps_load_on_the_input_grid_with_the_color_table(tmp_path, scene, input_volume):
    write_engine_outputs(tmp_path / "out", input_volume)
    loaded = load_results(tmp_path / "out", input_volume, Parameters(prompts=PROMPTS, load_pseudo_healthy=True,
                                                                     load_uncertainty=True))
    assert set(loaded.volumes) == {"attention_1", "attention_2", "pseudo_healthy", "uncertainty"}
    heat = loaded.volumes["attention_1"]
    expected, actual = (scene.GetFirstNodeByName(COLOR_NODE_NAME).GetID(), heat.GetDisplayNode().GetColorNodeID())
    assert actual == expected
    assert loaded.volumes["pseudo_healthy"].GetDisplayNode().GetColorNodeID() != expected
    for node in loaded.volumes.values():
        np.testing.assert_allclose(_ijk_to_ras(node), _ijk_to_ras(input_volume), atol=1e-4)
    np.testing.assert_array_equal(node_array(loaded.volumes["pseudo_healthy"]), node_array(input_volume))


def test_existing_segments_are_never_overwritten(tmp_path, scene, input_volume):
    write_engine_outputs(tmp_path / "out", input_volume)
    first = load_results(tmp_path / "out", input_volume, Parameters(prompts=PROMPTS))
    before = segment_mask(first.segmentation_node, first.rows[0].segment_id, input_volume)
    second = load_results(tmp_path / "out", input_volume, Parameters(prompts=PROMPTS), first.segmentation_node)
    segmentation = first.segmentation_node.GetSegmentation()
    names = sorted(segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments()))
    assert names == sorted(PROMPTS + [f"{p} (2)" for p in PROMPTS])
    assert second.segmentation_node is first.segmentation_node
    np.testing.assert_array_equal(segment_mask(first.segmentation_node, first.rows[0].segment_id, input_volume), before)


def test_missing_files_are_named_and_a_missing_segmentation_or_report_is_an_error(tmp_path, scene, input_volume):
    out = tmp_path / "out"
    write_engine_outputs(out, input_volume, complete=False)
    loaded = load_results(out, input_volume, Parameters(prompts=PROMPTS))
    assert "attention_2.nii.gz" in loaded.missing and "uncertainty.nii.gz" in loaded.missing
    assert "segmentation.seg.nrrd" not in loaded.missing and "attention_1.nii.gz" not in loaded.missing
    assert set(loaded.volumes) == {"attention_1"}
    (out / "segmentation.seg.nrrd").unlink()
    with pytest.raises(ResultsError, match="no segmentation file"):
        load_results(out, input_volume, Parameters(prompts=PROMPTS))
    (out / "report.json").write_text(json.dumps({**engine_report(), "schema": "diffugts.segment.report/0"}))
    with pytest.raises(ResultsError, match=r"schema diffugts\.segment\.report/0; this module reads .*/1"):
        load_results(out, input_volume, Parameters(prompts=PROMPTS))
    (out / "report.json").unlink()
    with pytest.raises(ResultsError, match="wrote no report.json .*did not complete"):
        load_results(out, input_volume, Parameters(prompts=PROMPTS))


def test_a_load_that_fails_half_way_leaves_nothing_behind(tmp_path, scene, input_volume):
    write_engine_outputs(tmp_path / "first", input_volume)
    target = load_results(tmp_path / "first", input_volume, Parameters(prompts=PROMPTS)).segmentation_node
    write_engine_outputs(tmp_path / "out", input_volume)
    (tmp_path / "out" / "attention_2.nii.gz").write_bytes(b"not a volume")  # read after the segments are added
    for segmentation_node in (None, target):
        nodes = [scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())]
        with pytest.raises(OSError, match="attention_2"):
            load_results(tmp_path / "out", input_volume, Parameters(prompts=PROMPTS), segmentation_node)
        assert [scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())] == nodes
        assert segment_names(target) == set(PROMPTS)


def test_an_organ_mask_segmentation_is_exported_on_the_input_grid(tmp_path, scene, input_volume):
    write_engine_outputs(tmp_path / "out", input_volume)
    organ = load_results(tmp_path / "out", input_volume, Parameters(prompts=PROMPTS)).segmentation_node
    path = scene_io.export_mask(organ, input_volume, tmp_path / "organ.nrrd")
    np.testing.assert_array_equal(read_volume(path).array > 0, masks()[0] | masks()[1])


def test_loaded_segmentation_saves_as_seg_nrrd_and_reads_back_voxel_exact(tmp_path, scene, input_volume):
    write_engine_outputs(tmp_path / "out", input_volume)
    loaded = load_results(tmp_path / "out", input_volume, Parameters(prompts=PROMPTS))
    saved = scene_io.write_segmentation(loaded.segmentation_node, tmp_path / "saved.seg.nrrd")
    back = scene_io.read_segmentation(scene, saved)
    segmentation = back.GetSegmentation()
    assert [segmentation.GetNthSegment(i).GetName() for i in range(2)] == PROMPTS
    for index, expected in enumerate(masks()):
        np.testing.assert_array_equal(segment_mask(back, segmentation.GetNthSegmentID(index), input_volume), expected)
    assert "Neoplasm" in segmentation.GetNthSegment(0).GetTerminology()


def _ijk_to_ras(node) -> np.ndarray:
    import vtk

    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def _world_voxels(segmentation_node, segment_id: str) -> set[tuple[float, float, float]]:
    """The world (RAS) positions of a segment's voxels, through its node's parent transform, rounded to 0.01 mm."""
    import vtk
    from vtk.util.numpy_support import vtk_to_numpy

    oriented = slicer.vtkOrientedImageData()
    segmentation_node.GetBinaryLabelmapRepresentation(segment_id, oriented)
    extent = oriented.GetExtent()
    shape = (extent[5] - extent[4] + 1, extent[3] - extent[2] + 1, extent[1] - extent[0] + 1)
    values = vtk_to_numpy(oriented.GetPointData().GetScalars()).reshape(shape)
    ijk = np.argwhere(values > 0)[:, ::-1] + [extent[0], extent[2], extent[4]]
    to_local = vtk.vtkMatrix4x4()
    oriented.GetImageToWorldMatrix(to_local)
    points = np.c_[ijk, np.ones(len(ijk))] @ _array(to_local).T
    parent = segmentation_node.GetParentTransformNode()
    if parent is not None:
        to_world = vtk.vtkMatrix4x4()
        parent.GetMatrixTransformToWorld(to_world)
        points = points @ _array(to_world).T
    return {tuple(np.round(p[:3], 2)) for p in points}


def _array(matrix) -> np.ndarray:
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def _translation(scene, offset_mm):
    import vtk

    node = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    matrix = vtk.vtkMatrix4x4()
    for axis, value in enumerate(offset_mm):
        matrix.SetElement(axis, 3, value)
    node.SetMatrixTransformToParent(matrix)
    return node


def test_results_into_a_users_segmentation_under_another_transform_never_move_its_segments(
        tmp_path, scene, input_volume):
    """The input volume is under one transform, the user's segmentation under another (or none): loading used to
    re-parent the segmentation to the volume's transform, moving the user's own segments."""
    write_engine_outputs(tmp_path / "out", input_volume)
    input_volume.SetAndObserveTransformNodeID(_translation(scene, (12.0, -7.0, 30.0)).GetID())
    reference = load_results(tmp_path / "out", input_volume, Parameters(prompts=PROMPTS))  # a fresh node
    expected = [_world_voxels(reference.segmentation_node, row.segment_id) for row in reference.rows]
    for user_transform in (None, _translation(scene, (-3.0, 5.0, 0.0))):
        users = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "my segments")
        users.SetAndObserveTransformNodeID(user_transform.GetID() if user_transform else None)
        users.SetReferenceImageGeometryParameterFromVolumeNode(input_volume)
        array = np.zeros(SHAPE, np.uint8)
        array[2:4, 1:3, 1:4] = 1
        labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
        labelmap.SetIJKToRASMatrix(_ijk_to_ras_matrix(input_volume))
        labelmap.SetAndObserveImageData(_image(array))
        scene_io.segmentations_logic(scene).ImportLabelmapToSegmentationNode(labelmap, users)
        mine = users.GetSegmentation().GetNthSegmentID(0)
        before = _world_voxels(users, mine)
        loaded = load_results(tmp_path / "out", input_volume, Parameters(prompts=PROMPTS), users)
        assert users.GetTransformNodeID() == (user_transform.GetID() if user_transform else None)
        assert _world_voxels(users, mine) == before  # the user's segment did not move
        assert [_world_voxels(users, row.segment_id) for row in loaded.rows] == expected  # ours where they belong


def _ijk_to_ras_matrix(volume):
    import vtk

    matrix = vtk.vtkMatrix4x4()
    volume.GetIJKToRASMatrix(matrix)
    return matrix


def _image(array: np.ndarray):
    import vtk
    from vtk.util.numpy_support import numpy_to_vtk

    image = vtk.vtkImageData()
    image.SetDimensions(array.shape[2], array.shape[1], array.shape[0])
    image.GetPointData().SetScalars(numpy_to_vtk(np.ascontiguousarray(array).ravel(), deep=True))
    return image
