"""The panel's .ui file under PySide6 offscreen: it loads with Slicer's custom widgets degrading to their base
class, every widget the Qt panel uses exists, and a screenshot of the panel is saved for CI and the README."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
from slicer_support import ARTIFACTS, MODULE_DIR, REPO_ROOT

QtWidgets = pytest.importorskip("PySide6.QtWidgets", reason="pip install -e '.[slicer-test]' (PySide6-Essentials)")
from PySide6.QtCore import QFile  # noqa: E402
from PySide6.QtUiTools import QUiLoader  # noqa: E402
from pythonqt_shim import STAND_INS, qMRMLNodeComboBox  # noqa: E402
from DiffuGTSSlicerLib.device import parse_probe, probe_command  # noqa: E402

UI_FILE = MODULE_DIR / "Resources" / "UI" / "DiffuGTSSlicer.ui"
QT_PANEL = MODULE_DIR / "DiffuGTSSlicerLib" / "qt_panel.py"
SCREENSHOT = REPO_ROOT / "Resources" / "Screenshots" / "panel.png"
DEGRADING = ("inputVolumeSelector", "modelsFolderPathLineEdit", "setupCollapsibleButton")
CUSTOM_WIDGETS = ("qMRMLWidget", "qMRMLNodeComboBox", "ctkCollapsibleButton", "ctkPathLineEdit")


@pytest.fixture(scope="module")
def app():
    return QtWidgets.QApplication.instance() or QtWidgets.QApplication([])


def load(loader: QUiLoader):
    file = QFile(str(UI_FILE))
    assert file.open(QFile.ReadOnly)
    try:
        widget = loader.load(file)
    finally:
        file.close()
    assert widget is not None, loader.errorString()
    return widget


def test_ui_declares_the_slicer_widgets_it_uses():
    text = UI_FILE.read_text()
    used = set(re.findall(r'<widget class="(\w+)"', text))
    declared = set(re.findall(r"<class>(\w+)</class>\s*<extends>", text))
    assert used - declared <= {name for name in used if name.startswith("Q")}
    assert declared == set(CUSTOM_WIDGETS)


def test_ui_loads_with_slicer_widgets_degraded_and_has_every_widget_the_panel_uses(app):
    panel = load(QUiLoader())
    used = set(re.findall(r"\bui\.(\w+)", QT_PANEL.read_text()))
    assert len(used) > 20
    missing = sorted(name for name in used if panel.findChild(QtWidgets.QWidget, name) is None)
    assert missing == []
    assert panel.findChild(QtWidgets.QPushButton, "segmentButton").text() == "Segment"
    assert panel.findChild(QtWidgets.QComboBox, "qualityComboBox").currentText() == "Balanced"
    combos = {name: panel.findChild(QtWidgets.QComboBox, f"{name}ComboBox") for name in ("modality", "device")}
    assert [combos["modality"].itemText(i) for i in range(3)] == ["Auto", "CT", "MR"]
    assert [combos["device"].itemText(i) for i in range(3)] == ["Auto", "CPU", "GPU"]


def test_slicer_widgets_degrade_to_their_base_class_without_stand_ins():
    # In a fresh process: PySide6 keeps custom widgets registered by other tests for the whole process.
    script = (f"from PySide6.QtWidgets import QApplication, QWidget\n"
              f"from PySide6.QtUiTools import QUiLoader\n"
              f"app = QApplication([])\n"
              f"panel = QUiLoader().load({str(UI_FILE)!r})\n"
              f"print(type(panel).__name__)\n"
              f"for name in {DEGRADING!r}: print(type(panel.findChild(QWidget, name)).__name__)\n")
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert output.stdout.split() == ["QWidget"] * (1 + len(DEGRADING)), output.stderr
    assert "defaulting to base class 'QWidget'" in output.stderr


def test_panel_screenshot(app):
    loader = QUiLoader()
    for stand_in in STAND_INS:
        loader.registerCustomWidget(stand_in)
    panel = load(loader)
    find = panel.findChild
    find(qMRMLNodeComboBox, "inputVolumeSelector").addItem("abdomen CT")
    find(qMRMLNodeComboBox, "outputSegmentationSelector").addItem("Create new segmentation")
    find(QtWidgets.QPlainTextEdit, "promptsTextEdit").setPlainText("kidney tumor\nmass in the pancreatic head")
    find(QtWidgets.QComboBox, "modalityComboBox").setCurrentIndex(1)
    # the state a user sees before pressing Segment: this machine's real torch/GPU probe, no results yet
    probe = subprocess.run(probe_command(sys.executable), capture_output=True, text=True, timeout=120)
    find(QtWidgets.QLabel, "deviceInfoLabel").setText(parse_probe(probe.stdout.splitlines()).describe())
    find(QtWidgets.QLabel, "estimateLabel").setText("")
    find(QtWidgets.QPushButton, "segmentButton").setText("Segment")
    find(QtWidgets.QProgressBar, "progressBar").setValue(0)
    find(QtWidgets.QLabel, "statusLabel").setText("")
    table = find(QtWidgets.QTableWidget, "resultsTable")
    table.resizeColumnsToContents()
    panel.resize(panel.minimumSizeHint().expandedTo(panel.sizeHint()))
    image = panel.grab().toImage()
    assert (image.width(), image.height()) == (panel.width(), panel.height())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert image.save(str(ARTIFACTS / "panel.png"))
    shutil.copyfile(ARTIFACTS / "panel.png", SCREENSHOT)
    colors = {image.pixelColor(x, y).name() for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colors) > 20  # rendered widgets, not a blank image
