"""The panel's new widgets in the Qt panel (PySide6 through the PythonQt shim, real MRML, the real engine):
Load demo case, the Model choice passed to the warm engine, the organ selector, and the click buttons."""

from __future__ import annotations

import numpy as np
import pytest
from slicer_support import add_oblique_volume, engine_blocked_on, launcher, slicer_core
from test_slicer_qt_panel import QtWidgets, find, panel, pump  # noqa: F401 - the panel fixture

slicer = slicer_core()

import vtk  # noqa: E402
from DiffuGTSSlicerLib import models  # noqa: E402
from DiffuGTSSlicerLib.parameters import Parameters  # noqa: E402

MAISI = models.ModelPackage("maisi-rflow-ct", "installed", 800_000_000, None, "NVIDIA Open Model License",
                            backbone="maisi-rflow-v2", folder="/models/weights/maisi-rflow-ct")


def test_load_demo_case_fills_the_volume_the_prompt_and_the_modality(panel, monkeypatch):
    qt_panel, widget, volume, _, application, _ = panel
    monkeypatch.setattr(slicer, "mrmlScene", volume.GetScene(), raising=False)
    find(widget, QtWidgets.QPushButton, "loadDemoButton").click()
    chosen = widget.findChild(QtWidgets.QComboBox, "inputVolumeSelector").currentNode()
    assert chosen.GetImageData().GetDimensions() == (160, 160, 30)
    assert find(widget, QtWidgets.QPlainTextEdit, "promptsTextEdit").toPlainText() == "lung tumor"
    assert find(widget, QtWidgets.QComboBox, "modalityComboBox").currentText() == "CT"
    find(widget, QtWidgets.QPushButton, "loadDemoButton").click()  # loaded once per scene
    assert len([n for n in range(volume.GetScene().GetNumberOfNodes())
                if volume.GetScene().GetNthNode(n).GetName() == chosen.GetName()]) == 1
    assert application.errors == []


def test_the_model_choice_lists_downloaded_packages_and_reaches_the_parameters(panel):
    qt_panel, widget, _, node, _, app = panel
    pump(app, lambda: not qt_panel.tools.running)
    combo = find(widget, QtWidgets.QComboBox, "modelComboBox")
    assert [combo.itemText(i) for i in range(combo.count())] == ["Demo models (bundled)"]  # nothing downloaded
    assert qt_panel.parameters().backbone == ""
    qt_panel.tools.listed.emit([*qt_panel.tools.packages, MAISI])
    assert combo.itemText(1) == "maisi-rflow-ct (backbone maisi-rflow-v2)"
    combo.setCurrentIndex(1)
    find(widget, QtWidgets.QLineEdit, "headsPathLineEdit").setText("/models/maisi-heads.safetensors")
    parameters = qt_panel.parameters()
    assert (parameters.backbone, parameters.weights, parameters.heads) == (
        "maisi-rflow-v2", "/models/weights/maisi-rflow-ct", "/models/maisi-heads.safetensors")
    parameters.write_to(node)
    assert Parameters.read_from(node).backbone == "maisi-rflow-v2"  # kept with the scene


@pytest.mark.slow
def test_a_backbone_without_heads_is_told_the_command_that_trains_them(panel, tmp_path):
    qt_panel, widget, volume, _, application, app = panel
    qt_panel.logic.python = launcher(tmp_path)
    qt_panel.tools.listed.emit([MAISI])
    find(widget, QtWidgets.QComboBox, "modelComboBox").setCurrentIndex(1)
    widget.findChild(QtWidgets.QComboBox, "inputVolumeSelector").setCurrentNode(volume)
    find(widget, QtWidgets.QPlainTextEdit, "promptsTextEdit").setPlainText("liver tumor")
    find(widget, QtWidgets.QPushButton, "segmentButton").click()
    pump(app, lambda: not qt_panel.logic.running, timeout=300)
    log = find(widget, QtWidgets.QPlainTextEdit, "logTextEdit").toPlainText()
    assert "serve --host 127.0.0.1" in log
    assert "--backbone maisi-rflow-v2 --weights /models/weights/maisi-rflow-ct" in log
    (error,) = application.errors
    assert "the engine ships no attention heads for backbone maisi-rflow-v2" in error
    assert "diffugts train attention --backbone maisi-rflow-v2" in error


def test_the_organ_selector_offers_every_segment_of_the_chosen_segmentation(panel):
    qt_panel, widget, volume, _, _, _ = panel
    from DiffuGTSSlicerLib.scene_io import segmentations_logic

    scene = volume.GetScene()
    segmentations_logic(scene)
    organs = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "TotalSegmentator")
    for name in ("liver", "kidney_left"):
        organs.GetSegmentation().AddEmptySegment(name, name)
    assert qt_panel._organ() == (None, "")
    widget.findChild(QtWidgets.QComboBox, "organSegmentationSelector").setCurrentNode(organs)
    combo = find(widget, QtWidgets.QComboBox, "organSegmentComboBox")
    assert [combo.itemText(i) for i in range(combo.count())] == ["All segments", "liver", "kidney_left"]
    assert qt_panel._organ() == (organs, "")
    combo.setCurrentIndex(2)
    assert qt_panel._organ() == (organs, "kidney_left")


def test_a_point_placed_after_a_result_sends_the_selected_prompt_again(panel, tmp_path):
    from test_slicer_results import PROMPTS, SHAPE, write_engine_outputs

    from DiffuGTSSlicerLib.results import load_results

    qt_panel, widget, volume, _, application, app = panel
    scene = volume.GetScene()
    application_logic = slicer.vtkSlicerApplicationLogic()
    application_logic.SetMRMLScene(scene)  # Slicer's interaction and selection nodes, for the place mode
    volume = add_oblique_volume(scene, np.zeros(SHAPE, np.int16), name="kidneys")
    widget.findChild(QtWidgets.QComboBox, "inputVolumeSelector").setCurrentNode(volume)
    find(widget, QtWidgets.QPlainTextEdit, "promptsTextEdit").setPlainText("\n".join(PROMPTS))
    write_engine_outputs(tmp_path / "out", volume)
    loaded = load_results(tmp_path / "out", volume, Parameters(prompts=PROMPTS))
    qt_panel.logic.finished.emit(loaded)  # a run's results, as the logic hands them over
    table = find(widget, QtWidgets.QTableWidget, "resultsTable")
    table.setCurrentCell(1, 0)  # the second prompt is selected
    qt_panel.logic.python = launcher(tmp_path, before=engine_blocked_on(tmp_path / "pipe.nii"))
    find(widget, QtWidgets.QPushButton, "negativePointButton").click()
    interaction = scene.GetNodeByID("vtkMRMLInteractionNodeSingleton")
    selection = scene.GetNodeByID("vtkMRMLSelectionNodeSingleton")
    assert interaction.GetCurrentInteractionMode() == interaction.Place
    points = scene.GetNodeByID(selection.GetActivePlaceNodeID())
    assert points.GetName() == f"DiffuGTS - {PROMPTS[1]}"
    points.AddControlPoint(vtk.vtkVector3d(1.0, 2.0, 3.0))  # what a click in a slice view does in place mode
    button = find(widget, QtWidgets.QPushButton, "segmentButton")
    assert qt_panel.logic.running and button.text() == "Cancel"
    assert qt_panel.logic.plan.request["prompts"] == [PROMPTS[1]]
    assert qt_panel.logic.plan.request["points"] == [
        {"prompt": PROMPTS[1], "position": [1.0, 2.0, 3.0], "positive": False}]
    assert find(widget, QtWidgets.QLabel, "statusLabel").text() == f"Correcting {PROMPTS[1]!r}..."
    points.AddControlPoint(vtk.vtkVector3d(2.0, 2.0, 3.0))  # placed while the job runs: sent when it ends
    assert qt_panel.clicks.pending == {1} and len(qt_panel.logic.plan.request["points"]) == 1
    button.click()
    pump(app, lambda: not qt_panel.logic.running, timeout=30)
    assert application.errors == ["Cancelled."] and button.text() == "Segment"
    assert qt_panel.clicks.pending == set() and not qt_panel.logic.running  # cancelled: nothing sent after it
