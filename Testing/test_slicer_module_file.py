"""DiffuGTSSlicer.py itself, imported outside Slicer with stand-ins for Slicer's ScriptedLoadableModule base
classes (application framework), its Logic run on real MRML volumes against the session's real warm engine: a
malformed ROI is refused in the engine's one line (the options reach it), and two scripted calls on one volume
start the engine once and send the volume once."""

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
def module(monkeypatch, tmp_path):
    monkeypatch.setenv("DIFFUGTS_HOME", str(tmp_path / "home"))
    framework = types.ModuleType("slicer.ScriptedLoadableModule")
    for name in ("ScriptedLoadableModule", "ScriptedLoadableModuleWidget", "ScriptedLoadableModuleLogic",
                 "ScriptedLoadableModuleTest"):
        setattr(framework, name, type(name, (Base,), {}))
    monkeypatch.setitem(sys.modules, "slicer.ScriptedLoadableModule", framework)
    monkeypatch.delitem(sys.modules, "DiffuGTSSlicer", raising=False)
    yield importlib.import_module("DiffuGTSSlicer")
    module = sys.modules.pop("DiffuGTSSlicer", None)
    if module is not None and module.DiffuGTSSlicerLogic.engine is not None:
        module.DiffuGTSSlicerLogic.engine.close()  # stops the session's engine: each test starts its own


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
    with pytest.raises(RuntimeError, match=r"^the server answered 400: --roi 'abc' is not three voxel ranges"):
        module.DiffuGTSSlicerLogic().segment(volume, ["kidney tumor"], roi="abc", timeout=60)
    assert scene.GetNumberOfNodes() == nodes  # nothing loaded


@pytest.mark.slow
def test_scripted_calls_share_the_sessions_warm_engine_and_send_a_volume_once(module):
    from diffugts.data.phantom import make_phantom
    from DiffuGTSSlicerLib.engine_server import session_server

    scene = slicer.vtkMRMLScene()
    array = make_phantom("kidney tumor", "CT", (24, 22, 14), seed=3).image.array.astype(np.int16)
    volume = add_oblique_volume(scene, array)
    started = session_server().starts  # the session's engine: earlier tests may have started it too
    first = module.DiffuGTSSlicerLogic().segment(volume, ["kidney tumor"], quality="fast", device="cpu", timeout=600)
    second = module.DiffuGTSSlicerLogic().segment(volume, ["renal mass"], quality="fast", device="cpu", timeout=600)
    engine = module.DiffuGTSSlicerLogic.engine
    assert engine.server is session_server()  # the panel's engine too
    assert (engine.server.starts - started, engine.uploaded, len(engine.jobs)) == (1, 1, 2)
    assert [first.rows[0].prompt, second.rows[0].prompt] == ["kidney tumor", "renal mass"]
    assert first.segmentation_node is not second.segmentation_node and scene.GetNumberOfNodes() > 1
