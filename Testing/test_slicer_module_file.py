"""DiffuGTSSlicer.py itself, imported outside Slicer with stand-ins for Slicer's ScriptedLoadableModule base
classes (application framework), its Logic run on a real MRML volume against the real engine (which refuses
a malformed ROI: the options reach it and its one-line error comes back)."""

from __future__ import annotations

import importlib
import sys
import types

import numpy as np
import pytest
from slicer_support import add_oblique_volume, slicer_core

slicer = slicer_core()


class Base:
    def __init__(self, parent=None) -> None:
        self.parent = parent


@pytest.fixture
def module(monkeypatch):
    framework = types.ModuleType("slicer.ScriptedLoadableModule")
    for name in ("ScriptedLoadableModule", "ScriptedLoadableModuleWidget", "ScriptedLoadableModuleLogic",
                 "ScriptedLoadableModuleTest"):
        setattr(framework, name, type(name, (Base,), {}))
    monkeypatch.setitem(sys.modules, "slicer.ScriptedLoadableModule", framework)
    monkeypatch.delitem(sys.modules, "DiffuGTSSlicer", raising=False)
    yield importlib.import_module("DiffuGTSSlicer")
    sys.modules.pop("DiffuGTSSlicer", None)


def test_module_describes_itself(module):
    parent = types.SimpleNamespace()
    module.DiffuGTSSlicer(parent)
    assert parent.title == "DiffuGTS" and parent.categories == ["Segmentation"]
    assert "not for clinical use" in parent.helpText
    assert "DiffuGTSSlicerLib.qt_panel" not in sys.modules  # Qt parts load with the widget, not the module


def test_scripted_segment_passes_options_and_raises_the_engines_message(module):
    scene = slicer.vtkMRMLScene()
    volume = add_oblique_volume(scene, np.zeros((4, 8, 8), np.int16))
    nodes = scene.GetNumberOfNodes()
    with pytest.raises(RuntimeError, match=r"^--roi 'abc' is not three voxel ranges"):
        module.DiffuGTSSlicerLogic().segment(volume, ["kidney tumor"], roi="abc", timeout=60)
    assert scene.GetNumberOfNodes() == nodes  # nothing loaded
