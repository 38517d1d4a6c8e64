"""Correction clicks and the organ selector on the Slicer side (issue 18, item 4), outside Slicer: real MRML
markups, the clicks the job gets (in the input volume's own frame), Slicer's place mode, and a prompt corrected
in place by a real local warm engine."""

from __future__ import annotations

import numpy as np
import pytest
from slicer_support import add_oblique_volume, launcher, node_array, segment_mask, slicer_core

slicer = slicer_core()

import vtk  # noqa: E402
from diffugts.data.phantom import make_phantom  # noqa: E402
from DiffuGTSSlicerLib.clicks import ClickSession, world_to_volume  # noqa: E402
from DiffuGTSSlicerLib.engine_server import LocalServer  # noqa: E402
from DiffuGTSSlicerLib.parameters import Parameters  # noqa: E402
from DiffuGTSSlicerLib.scene_io import load_volume  # noqa: E402
from DiffuGTSSlicerLib.results import LoadedResults, ResultRow  # noqa: E402
from DiffuGTSSlicerLib.scene_io import segmentations_logic  # noqa: E402
from DiffuGTSSlicerLib.server_logic import ServerLogic, Update, server_request  # noqa: E402

SHIFT = (10.0, -4.0, 2.5)  # the input volume's parent transform: a translation (mm)


@pytest.fixture
def scene():
    scene = slicer.vtkMRMLScene()
    application = slicer.vtkSlicerApplicationLogic()
    application.SetMRMLScene(scene)  # the selection and interaction singletons Slicer's place mode uses
    markups = slicer.vtkSlicerMarkupsLogic()
    markups.SetMRMLScene(scene)
    scene.keep = (application, markups)
    return scene


def shifted(volume):
    transform = volume.GetScene().AddNewNodeByClass("vtkMRMLLinearTransformNode")
    matrix = vtk.vtkMatrix4x4()
    for axis, value in enumerate(SHIFT):
        matrix.SetElement(axis, 3, value)
    transform.SetMatrixTransformToParent(matrix)
    volume.SetAndObserveTransformNodeID(transform.GetID())
    return volume


def fake_results(scene, prompts):
    segmentations_logic(scene)
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    rows = [ResultRow(prompt, segmentation.GetSegmentation().AddEmptySegment(prompt), 0.5, 1.0) for prompt in prompts]
    return LoadedResults(segmentation, rows, None)


def session_with_results(scene, prompts=("kidney tumor", "renal cyst")):
    volume = shifted(add_oblique_volume(scene, np.zeros((4, 8, 8), np.int16)))
    session = ClickSession(ServerLogic(LocalServer(python="/nonexistent/python")))
    session.set_results(fake_results(scene, prompts), volume, Parameters(prompts=list(prompts), quality="fast"))
    return session, volume


def test_clicks_are_sent_in_the_input_volumes_own_frame_for_the_selected_prompt(scene):
    session, volume = session_with_results(scene)
    session.select(1)
    sent = []
    session.changed = sent.append  # record instead of sending: this test is about what would be sent
    positive = session.node("positive")
    positive.AddControlPoint(vtk.vtkVector3d(20.0, 0.0, 5.0))
    session.node("negative").AddControlPoint(vtk.vtkVector3d(11.0, 1.0, 3.0))
    box = session.node("box")
    box.SetXYZ(15.0, 0.0, 5.0)
    box.SetRadiusXYZ(2.0, 3.0, 4.0)
    points, boxes = session.job_clicks(1)
    assert points == [{"prompt": "renal cyst", "position": [10.0, 4.0, 2.5], "positive": True},
                      {"prompt": "renal cyst", "position": [1.0, 5.0, 0.5], "positive": False}]
    assert boxes == [{"prompt": "renal cyst", "min": [3.0, 1.0, -1.5], "max": [7.0, 7.0, 6.5]}]
    assert session.job_clicks(0) == ([], [])  # the other prompt has no clicks
    assert sent == [1, 1, 1]  # each placement (two points, the box) asks for prompt 1 to be sent again
    assert positive.GetName() == "DiffuGTS + renal cyst"

    request = server_request(session.parameters, Update(session.results, 1, points, boxes))
    assert request["prompts"] == ["renal cyst"] and request["coordinates"] == "RAS"
    assert (request["points"], request["boxes"]) == (points, boxes)
    assert "points" not in server_request(session.parameters)
    from diffugts.segment.job import SegmentRequest
    from diffugts.segment.points import ClickBox, Point

    parsed = SegmentRequest.from_json(request)  # what the server reads from it
    assert parsed.points == (Point((10.0, 4.0, 2.5), True, "renal cyst"), Point((1.0, 5.0, 0.5), False, "renal cyst"))
    assert parsed.boxes == (ClickBox((3.0, 1.0, -1.5), (7.0, 7.0, 6.5), "renal cyst"),)


def test_world_to_volume_undoes_the_volumes_transform(scene):
    volume = shifted(add_oblique_volume(scene, np.zeros((4, 8, 8), np.int16)))
    assert world_to_volume(volume, (0.0, 0.0, 0.0)) == [-10.0, 4.0, -2.5]


def test_the_point_buttons_start_slicers_place_mode_on_the_selected_prompts_list(scene):
    session, _ = session_with_results(scene)
    interaction = scene.GetNodeByID("vtkMRMLInteractionNodeSingleton")
    selection = scene.GetNodeByID("vtkMRMLSelectionNodeSingleton")
    assert session.place("negative") is None
    assert interaction.GetCurrentInteractionMode() == interaction.Place and interaction.GetPlaceModePersistence()
    assert scene.GetNodeByID(selection.GetActivePlaceNodeID()).GetName() == "DiffuGTS - kidney tumor"
    assert session.place("box") is None
    assert selection.GetActivePlaceNodeClassName() == "vtkMRMLMarkupsROINode"
    assert not interaction.GetPlaceModePersistence()  # one box: placing ends after it
    session.clear()
    assert scene.GetFirstNodeByName("DiffuGTS - kidney tumor") is None


def test_clicks_before_any_result_say_what_to_do_first(scene):
    session = ClickSession(ServerLogic(LocalServer(python="/nonexistent/python")))
    assert session.place("positive") == "Segment first: clicks correct the result of a prompt."


def organ_segmentation(scene, path, name: str):
    """A segmentation with one segment ``name`` imported from a mask file (on the volume's grid)."""
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    storage.SetFileName(str(path))
    assert storage.ReadData(labelmap)
    segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "organs")
    assert segmentations_logic(scene).ImportLabelmapToSegmentationNode(labelmap, segmentation)
    segmentation.GetSegmentation().GetNthSegment(0).SetName(name)
    scene.RemoveNode(labelmap)
    return segmentation, segmentation.GetSegmentation().GetNthSegmentID(0)


def kidney_phantom(scene, folder, size=(40, 36, 28), seed: int = 0):
    """The kidney-tumor phantom on its own grid, with a segmentation of the kidney holding the tumor (what the
    TotalSegmentator extension would give for a real scan): (volume, tumor, kidney, organ node, segment id), the
    masks as [k, j, i] arrays on the volume's grid."""
    from diffugts.io import write_volume

    phantom = make_phantom("kidney tumor", "CT", size, seed=seed)
    tumor = phantom.mask.array > 0
    values, counts = np.unique(phantom.organs.array[tumor], return_counts=True)
    kidney = (phantom.organs.array == values[np.argmax(counts)]) | tumor
    volume = load_volume(scene, write_volume(phantom.image, folder / "phantom.nii.gz"), "phantom")
    masks = {}
    for name, mask in (("tumor", tumor), ("kidney", kidney)):
        path = write_volume(phantom.image.like(mask.astype(np.uint8), modality="mask"), folder / f"{name}.nii.gz")
        masks[name] = node_array(load_volume(scene, path, name)) > 0
    organ_node, organ_id = organ_segmentation(scene, folder / "kidney.nii.gz", "kidney")
    return volume, masks["tumor"], masks["kidney"], organ_node, organ_id


def world_point(volume, region: np.ndarray) -> vtk.vtkVector3d:
    """The scene (RAS) position of the voxel of ``region`` ([k, j, i] on ``volume``'s grid, under no transform)
    farthest from its border: where a simulated click goes, as in Testing/test_clicks.py."""
    from scipy import ndimage

    k, j, i = np.unravel_index(int(np.argmax(ndimage.distance_transform_edt(region))), region.shape)
    matrix = vtk.vtkMatrix4x4()
    volume.GetIJKToRASMatrix(matrix)
    return vtk.vtkVector3d(*matrix.MultiplyPoint([float(i), float(j), float(k), 1.0])[:3])


def dice(mask: np.ndarray, truth: np.ndarray) -> float:
    return 2 * float((mask & truth).sum()) / max(1, int(mask.sum() + truth.sum()))


@pytest.mark.slow
def test_clicks_and_an_organ_correct_a_prompt_in_place_on_a_real_local_engine(tmp_path, monkeypatch, scene):
    """The engine's own click cases (Testing/test_clicks.py), placed as Markups in the scene: a negative point
    removes the false positive it lands on; the kidney chosen as organ keeps the prompt inside it; there a
    positive point finds the tumor the text missed. Each correction changes the one segment in place (the other
    prompt's stays as it was), and neither a click nor the same organ sends anything again."""
    from scipy import ndimage

    monkeypatch.setenv("DIFFUGTS_HOME", str(tmp_path / "home"))
    volume, tumor, kidney, organ_node, organ_id = kidney_phantom(scene, tmp_path, size=(48, 48, 40), seed=4)
    logic = ServerLogic(LocalServer(python=launcher(tmp_path)))
    outcomes: list = []
    for signal in (logic.finished, logic.updated, logic.failed):
        signal.connect(lambda *args: outcomes.append(args))

    def corrected() -> np.ndarray:
        logic.wait(timeout=600)
        assert outcomes[-1] == (results, 1), outcomes[-1]
        return segment_mask(results.segmentation_node, results.rows[1].segment_id, volume)

    try:
        parameters = Parameters(prompts=["liver tumor", "kidney tumor"], quality="fast", device="cpu")
        logic.start(volume, parameters)
        logic.wait(timeout=600)
        ((results,),) = outcomes
        assert isinstance(results, LoadedResults), results
        ids = [results.segmentation_node.GetSegmentation().GetNthSegmentID(i) for i in range(2)]
        liver = segment_mask(results.segmentation_node, results.rows[0].segment_id, volume)
        text = segment_mask(results.segmentation_node, results.rows[1].segment_id, volume)
        labels, _ = ndimage.label(text & ~tumor)
        assert labels.max() > 0, "the text prompt left no false positive to click on"
        largest = labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1
        chosen = [None, ""]
        session = ClickSession(logic, organ=lambda: tuple(chosen))
        session.set_results(results, volume, parameters)
        session.select(1)

        session.node("negative").AddControlPoint(world_point(volume, largest))  # "not this"
        after = corrected()
        assert text[largest].all() and not (after & largest).any()
        assert results.rows[1].volume_ml == pytest.approx(after.sum() * np.prod(volume.GetSpacing()) / 1000, abs=1e-3)

        session.clear()
        chosen[:] = organ_node, organ_id  # what the panel does when the organ selector changes
        session.changed(1)
        inside = corrected()
        assert not (inside & ~kidney).any() and (text & ~kidney).any()  # the organ keeps the prompt inside it
        session.node("positive").AddControlPoint(world_point(volume, tumor))  # "here": the text missed it
        clicked = corrected()
        assert dice(inside, tumor) < 0.2 and dice(clicked, tumor) > 0.5 and results.rows[1].found

        segmentation = results.segmentation_node.GetSegmentation()
        assert [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())] == ids
        assert (segment_mask(results.segmentation_node, results.rows[0].segment_id, volume) == liver).all()
        assert (logic.server.starts, logic.uploaded, len(logic.jobs)) == (1, 2, 4)  # volume and organ sent once
    finally:
        logic.close()
