"""Helpers for the test_slicer_* tests: the module's folder on sys.path, a real MRML scene, oblique volumes.

The module runs outside Slicer here: real MRML from the pinned slicer-core package, Qt from PySide6 offscreen.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
MODULE_DIR = REPO_ROOT / "DiffuGTSSlicer"
ARTIFACTS = REPO_ROOT / "Testing" / "artifacts"
if str(MODULE_DIR) not in sys.path:
    sys.path.insert(0, str(MODULE_DIR))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# An oblique grid: rotated 30 degrees about S, anisotropic spacing, off-centre origin (RAS).
OBLIQUE_ROTATION = np.array([[0.866025403784, -0.5, 0.0], [0.5, 0.866025403784, 0.0], [0.0, 0.0, 1.0]])
OBLIQUE_SPACING = (0.8, 1.25, 2.5)
OBLIQUE_ORIGIN = (12.5, -40.0, 7.25)


def slicer_core():
    """The slicer package from slicer-core (skip, saying how to install it, when absent)."""
    return pytest.importorskip("slicer", reason="pip install -e '.[slicer-test]' (slicer-core) for MRML tests")


def add_oblique_volume(scene, array: np.ndarray, name: str = "CT"):
    """A scalar volume node holding ``array`` ([k, j, i]) on the oblique grid."""
    import vtk
    from vtk.util.numpy_support import numpy_to_vtk

    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    image = vtk.vtkImageData()
    image.SetDimensions(array.shape[2], array.shape[1], array.shape[0])
    image.GetPointData().SetScalars(numpy_to_vtk(np.ascontiguousarray(array).ravel(), deep=True))
    node.SetAndObserveImageData(image)
    matrix = vtk.vtkMatrix4x4()
    axes = OBLIQUE_ROTATION * np.asarray(OBLIQUE_SPACING)
    for row in range(3):
        for column in range(3):
            matrix.SetElement(row, column, axes[row, column])
        matrix.SetElement(row, 3, OBLIQUE_ORIGIN[row])
    node.SetIJKToRASMatrix(matrix)
    node.CreateDefaultDisplayNodes()
    return node


def node_array(node) -> np.ndarray:
    """A volume or labelmap node's voxels as [k, j, i]."""
    from vtk.util.numpy_support import vtk_to_numpy

    image = node.GetImageData()
    i, j, k = image.GetDimensions()
    return vtk_to_numpy(image.GetPointData().GetScalars()).reshape(k, j, i)


def segment_mask(segmentation_node, segment_id: str, reference_volume) -> np.ndarray:
    """One segment as a boolean [k, j, i] mask on the reference volume's grid."""
    import vtk
    from DiffuGTSSlicerLib.scene_io import segmentations_logic

    scene = segmentation_node.GetScene()
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    ids = vtk.vtkStringArray()
    ids.InsertNextValue(segment_id)
    assert segmentations_logic(scene).ExportSegmentsToLabelmapNode(segmentation_node, ids, labelmap, reference_volume)
    mask = node_array(labelmap) > 0
    scene.RemoveNode(labelmap)
    return mask


class Settings(dict):
    """QSettings' value/setValue on a dict (the application's settings are not here)."""

    def value(self, key, default=None):
        return self.get(key, default)

    def setValue(self, key, value):  # noqa: N802 - Qt's name
        self[key] = value


class Recorder:
    """Collects what a runner or logic emits."""

    def __init__(self, source) -> None:
        self.progress: list[tuple[str, float]] = []
        self.log: list[str] = []
        self.results: list = []
        source.progress.connect(lambda stage, fraction: self.progress.append((stage, fraction)))
        source.log.connect(self.log.append)
        source.finished.connect(self.results.append)
        if hasattr(source, "failed"):
            source.failed.connect(self.results.append)


def launcher(folder: Path, before: str = "") -> str:
    """A stand-in for PythonSlicer: a launcher process whose child is the real Python (not an exec)."""
    path = folder / "PythonLauncher"
    path.write_text(f'#!/bin/sh\n{before}"{sys.executable}" "$@"\nexit $?\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def engine_blocked_on(fifo: Path) -> str:
    """A real engine command that runs until killed: `info` on a named pipe nobody writes to."""
    os.mkfifo(fifo)
    return f'"{sys.executable}" -m diffugts --progress json info "{fifo}"\n'


def wait_for_children(pid: int, count: int, timeout: float = 20.0) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = psutil.Process(pid).children(recursive=True)
        if len(children) >= count:
            return children
        time.sleep(0.05)
    raise AssertionError(f"process {pid} did not start {count} children")
