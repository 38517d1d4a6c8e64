"""The panel's .ui file under PySide6 offscreen: it loads with Slicer's custom widgets degrading to their base
class, every widget the Qt panel uses exists, and a screenshot of the panel is saved for CI and the README."""

from __future__ import annotations

import re
import shutil

import pytest
from slicer_support import ARTIFACTS, MODULE_DIR, REPO_ROOT

QtWidgets = pytest.importorskip("PySide6.QtWidgets", reason="pip install -e '.[slicer-test]' (PySide6-Essentials)")
from PySide6.QtCore import Property, QFile  # noqa: E402
from PySide6.QtUiTools import QUiLoader  # noqa: E402

UI_FILE = MODULE_DIR / "Resources" / "UI" / "DiffuGTSSlicer.ui"
QT_PANEL = MODULE_DIR / "DiffuGTSSlicerLib" / "qt_panel.py"
SCREENSHOT = REPO_ROOT / "Resources" / "Screenshots" / "panel.png"
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
    for name in ("inputVolumeSelector", "outputSegmentationSelector", "modelsFolderPathLineEdit"):
        assert type(panel.findChild(QtWidgets.QWidget, name)) is QtWidgets.QWidget  # base class stand-in
    assert panel.findChild(QtWidgets.QPushButton, "segmentButton").text() == "Segment"
    assert panel.findChild(QtWidgets.QComboBox, "qualityComboBox").currentText() == "Balanced"
    combos = {name: panel.findChild(QtWidgets.QComboBox, f"{name}ComboBox") for name in ("modality", "device")}
    assert [combos["modality"].itemText(i) for i in range(3)] == ["Auto", "CT", "MR"]
    assert [combos["device"].itemText(i) for i in range(3)] == ["Auto", "CPU", "GPU"]


class qMRMLNodeComboBox(QtWidgets.QComboBox):  # noqa: N801 - the Slicer class name, for the screenshot
    pass


class ctkPathLineEdit(QtWidgets.QLineEdit):  # noqa: N801
    pass


class ctkCollapsibleButton(QtWidgets.QGroupBox):  # noqa: N801
    """A group box with the `text` and `collapsed` properties the .ui sets."""

    def _text(self) -> str:
        return self.title()

    def _set_text(self, text: str) -> None:
        self.setTitle(text)

    def _collapsed(self) -> bool:
        return self.isFlat()

    def _set_collapsed(self, collapsed: bool) -> None:
        self.setFlat(collapsed)
        self.setTitle(("▸ " if collapsed else "▾ ") + self.title().lstrip("▸▾ "))
        self.setMaximumHeight(24 if collapsed else 16777215)

    text = Property(str, _text, _set_text)
    collapsed = Property(bool, _collapsed, _set_collapsed)


def test_panel_screenshot(app):
    loader = QUiLoader()
    for stand_in in (qMRMLNodeComboBox, ctkPathLineEdit, ctkCollapsibleButton):
        loader.registerCustomWidget(stand_in)
    panel = load(loader)
    find = panel.findChild
    find(qMRMLNodeComboBox, "inputVolumeSelector").addItem("abdomen CT")
    find(qMRMLNodeComboBox, "outputSegmentationSelector").addItem("Create new segmentation")
    find(QtWidgets.QPlainTextEdit, "promptsTextEdit").setPlainText("kidney tumor\nmass in the pancreatic head")
    find(QtWidgets.QComboBox, "modalityComboBox").setCurrentIndex(1)
    find(QtWidgets.QLabel, "deviceInfoLabel").setText("PyTorch 2.13.0, CUDA 12.8: NVIDIA H100 (79.2 GB)")
    find(QtWidgets.QLabel, "estimateLabel").setText("About a minute or less on the GPU")
    find(QtWidgets.QPushButton, "segmentButton").setText("Cancel")
    find(QtWidgets.QProgressBar, "progressBar").setValue(62)
    find(QtWidgets.QLabel, "statusLabel").setText("Inpaint")
    table = find(QtWidgets.QTableWidget, "resultsTable")
    table.setRowCount(2)
    for row, values in enumerate((("kidney tumor", "0.93", "14.20"), ("mass in the pancreatic head", "0.41", "2.75"))):
        for column, value in enumerate(values):
            table.setItem(row, column, QtWidgets.QTableWidgetItem(value))
    table.resizeColumnsToContents()
    panel.resize(panel.minimumSizeHint().expandedTo(panel.sizeHint()))
    image = panel.grab().toImage()
    assert (image.width(), image.height()) == (panel.width(), panel.height())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert image.save(str(ARTIFACTS / "panel.png"))
    shutil.copyfile(ARTIFACTS / "panel.png", SCREENSHOT)
    colors = {image.pixelColor(x, y).name() for x in range(0, image.width(), 7) for y in range(0, image.height(), 7)}
    assert len(colors) > 20  # rendered widgets, not a blank image
