"""The Qt panel itself (DiffuGTSSlicerLib.qt_panel, PythonQt code) run outside Slicer on PySide6 through a small
PythonQt shim, with a real MRML scene and the real engine; only the application's dialogs and views are fakes."""

from __future__ import annotations

import contextlib
import importlib
import sys
import time

import numpy as np
import pytest
from slicer_support import (MODULE_DIR, Settings, add_oblique_volume, engine_blocked_on, launcher,
                            slicer_core)

QtWidgets = pytest.importorskip("PySide6.QtWidgets", reason="pip install -e '.[slicer-test]' (PySide6-Essentials)")
from PySide6.QtCore import QFile, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtUiTools import QUiLoader  # noqa: E402
from pythonqt_shim import STAND_INS, child_widget_variables, ctk_module, qt_module  # noqa: E402

slicer = slicer_core()


class Application:
    """What the panel asks of Slicer's application: dialogs answered yes, and views (none here)."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.infos: list[str] = []
        self.questions: list[str] = []

    def layoutManager(self):  # noqa: N802 - Slicer's name
        return type("LayoutManager", (), {"threeDWidget": lambda self, index: None})()


@pytest.fixture
def panel(monkeypatch, tmp_path):
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    application = Application()
    monkeypatch.setenv("DIFFUGTS_HOME", str(tmp_path / "home"))
    monkeypatch.setitem(sys.modules, "qt", qt_module(Settings()))
    monkeypatch.setitem(sys.modules, "ctk", ctk_module())
    monkeypatch.setattr(slicer, "app", application, raising=False)
    for name, function in {
        "childWidgetVariables": child_widget_variables,
        "errorDisplay": lambda text, **kwargs: application.errors.append(text),
        "infoDisplay": lambda text, **kwargs: application.infos.append(text),
        "confirmOkCancelDisplay": lambda text, **kwargs: application.questions.append(text) or True,
        "confirmYesNoDisplay": lambda text, **kwargs: application.questions.append(text) or True,
        "setSliceViewerLayers": lambda **kwargs: None,
        "tryWithErrorDisplay": lambda *args, **kwargs: contextlib.nullcontext(),
    }.items():
        monkeypatch.setattr(slicer.util, name, function)
    monkeypatch.delitem(sys.modules, "DiffuGTSSlicerLib.qt_panel", raising=False)
    qt_panel = importlib.import_module("DiffuGTSSlicerLib.qt_panel")

    loader = QUiLoader()
    for stand_in in STAND_INS:
        loader.registerCustomWidget(stand_in)
    file = QFile(str(MODULE_DIR / "Resources" / "UI" / "DiffuGTSSlicer.ui"))
    file.open(QFile.ReadOnly)
    widget = loader.load(file)
    file.close()
    scene = slicer.vtkMRMLScene()
    parameter_node = scene.AddNewNodeByClass("vtkMRMLScriptedModuleNode")
    volume = add_oblique_volume(scene, np.zeros((4, 8, 8), np.int16), name="abdomen")
    panel = qt_panel.QtPanel(widget, lambda: parameter_node)
    yield panel, widget, volume, parameter_node, application, app
    panel.close()
    sys.modules.pop("DiffuGTSSlicerLib.qt_panel", None)


def pump(app, condition, timeout: float = 60.0) -> None:
    """Run Qt events (the panel's timer polls the engine) until ``condition()``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        app.processEvents()
        time.sleep(0.02)


def find(widget, kind, name):
    return widget.findChild(kind, name)


def test_setup_shows_torch_and_the_models_from_background_processes(panel):
    qt_panel, widget, _, _, application, app = panel
    pump(app, lambda: not qt_panel.probe.running and not qt_panel.tools.running)
    import torch

    assert torch.__version__ in find(widget, QtWidgets.QLabel, "deviceInfoLabel").text()
    assert "maisi-rflow-ct: not installed" in find(widget, QtWidgets.QLabel, "modelsLabel").text()
    assert "PyTorch" in find(widget, QtWidgets.QLabel, "dependenciesLabel").text()
    assert application.errors == []


def test_presets_fill_the_prompt_box_and_the_estimate_follows_the_volume(panel):
    qt_panel, widget, volume, _, _, app = panel
    modality = find(widget, QtWidgets.QComboBox, "modalityComboBox")
    modality.setCurrentIndex(2)  # MR
    presets = find(widget, QtWidgets.QComboBox, "presetsComboBox")
    assert presets.itemText(1) == "glioma"
    presets.activated.emit(1)
    presets.activated.emit(2)
    assert find(widget, QtWidgets.QPlainTextEdit, "promptsTextEdit").toPlainText() == "glioma\nbrain metastasis"
    assert presets.currentIndex() == 0
    widget.findChild(QtWidgets.QComboBox, "inputVolumeSelector").setCurrentNode(volume)
    assert find(widget, QtWidgets.QLabel, "estimateLabel").text().startswith(("Estimate from a 2-core benchmark:", "Rough guess, GPU not yet measured:"))


def test_ctrl_enter_segments_saving_the_parameters_and_the_history(panel, tmp_path):
    qt_panel, widget, volume, node, application, app = panel
    qt_panel.logic.python = launcher(tmp_path, before=engine_blocked_on(tmp_path / "pipe.nii"))
    widget.findChild(QtWidgets.QComboBox, "inputVolumeSelector").setCurrentNode(volume)
    prompts = find(widget, QtWidgets.QPlainTextEdit, "promptsTextEdit")
    prompts.setPlainText("kidney tumor\nliver lesion")
    find(widget, QtWidgets.QComboBox, "qualityComboBox").setCurrentIndex(0)
    button = find(widget, QtWidgets.QPushButton, "segmentButton")
    widget.show()
    widget.activateWindow()
    prompts.setFocus()
    pump(app, prompts.hasFocus)
    QTest.keyClick(prompts, Qt.Key_Return, Qt.ControlModifier)  # Ctrl+Enter segments
    assert button.text() == "Cancel", application.errors
    log = find(widget, QtWidgets.QPlainTextEdit, "logTextEdit").toPlainText()
    assert "Starting the engine: -m diffugts --progress json serve --host 127.0.0.1" in log  # the warm engine
    assert (node.GetParameter("prompts"), node.GetParameter("quality")) == ("kidney tumor\nliver lesion", "fast")
    assert node.GetNodeReference("InputVolume") is volume
    history = find(widget, QtWidgets.QComboBox, "historyComboBox")
    assert [history.itemText(i) for i in range(history.count())][1:] == ["kidney tumor", "liver lesion"]
    button.click()
    pump(app, lambda: not qt_panel.logic.running, timeout=30)
    assert button.text() == "Segment" and application.errors == ["Cancelled."]


def test_results_fill_the_table_and_the_status_shows_the_engines_warnings(panel, tmp_path):
    from test_slicer_results import PROMPTS, SHAPE, WARNINGS, write_engine_outputs

    from DiffuGTSSlicerLib.parameters import Parameters
    from DiffuGTSSlicerLib.results import load_results

    qt_panel, widget, volume, _, application, _ = panel
    volume = add_oblique_volume(volume.GetScene(), np.zeros(SHAPE, np.int16), name="kidneys")
    write_engine_outputs(tmp_path / "out", volume)
    loaded = load_results(tmp_path / "out", volume, Parameters(prompts=PROMPTS))
    qt_panel.logic.finished.emit(loaded)  # what the logic emits once a run's results are in the scene
    table = find(widget, QtWidgets.QTableWidget, "resultsTable")
    assert table.horizontalHeaderItem(1).text() == "Presence score"
    assert "not the probability" in table.horizontalHeaderItem(1).toolTip()
    cells = [[table.item(r, c).text() for c in range(3)] for r in range(table.rowCount())]
    assert cells == [["kidney tumor", "0.93", "0.14"], ["mass in the pancreatic head", "0.07", "0.03"]]
    status = find(widget, QtWidgets.QLabel, "statusLabel").text()
    assert status == f"Done. Warnings: {WARNINGS[0]}."
    assert widget.findChild(QtWidgets.QComboBox, "outputSegmentationSelector").currentNode() is loaded.segmentation_node
    assert application.errors == []


def test_the_segment_button_becomes_cancel_and_stops_the_engine(panel, tmp_path):
    qt_panel, widget, volume, _, application, app = panel
    qt_panel.logic.python = launcher(tmp_path, before=engine_blocked_on(tmp_path / "pipe.nii"))
    widget.findChild(QtWidgets.QComboBox, "inputVolumeSelector").setCurrentNode(volume)
    find(widget, QtWidgets.QPlainTextEdit, "promptsTextEdit").setPlainText("glioma")
    button = find(widget, QtWidgets.QPushButton, "segmentButton")
    button.click()
    workspace = qt_panel.logic.plan.workspace
    assert button.text() == "Cancel" and not find(widget, QtWidgets.QWidget, "inputsCollapsibleButton").isEnabled()
    time.sleep(0.5)
    button.click()
    pump(app, lambda: not qt_panel.logic.running, timeout=30)
    assert button.text() == "Segment" and find(widget, QtWidgets.QWidget, "inputsCollapsibleButton").isEnabled()
    assert application.errors == ["Cancelled."] and not workspace.exists()


def test_nothing_starts_without_prompts(panel):
    qt_panel, widget, volume, _, application, _ = panel
    widget.findChild(QtWidgets.QComboBox, "inputVolumeSelector").setCurrentNode(volume)
    find(widget, QtWidgets.QPushButton, "segmentButton").click()
    assert application.errors == ["Type what to look for, one prompt per line (for example: kidney tumor)."]
    assert not qt_panel.logic.running



def test_setup_buttons_say_when_there_is_nothing_to_do(panel):
    qt_panel, widget, _, _, application, app = panel
    pump(app, lambda: not qt_panel.tools.running)
    find(widget, QtWidgets.QPushButton, "installButton").click()
    find(widget, QtWidgets.QPushButton, "deleteModelsButton").click()
    assert application.infos == ["Everything the engine needs is installed.", "No downloaded models to delete."]
    assert application.questions == []
