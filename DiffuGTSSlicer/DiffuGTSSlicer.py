"""DiffuGTS: segment tumors in CT and MRI from free-text prompts. Module, Widget, Logic and Test are thin;
the behaviour lives in DiffuGTSSlicerLib, and the engine (bundled diffugts package) runs in its own process."""

from __future__ import annotations

import slicer
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)

from DiffuGTSSlicerLib.engine_server import session_server
from DiffuGTSSlicerLib.i18n import _
from DiffuGTSSlicerLib.parameters import Parameters
from DiffuGTSSlicerLib.results import LoadedResults
from DiffuGTSSlicerLib.server_logic import ServerLogic


class DiffuGTSSlicer(ScriptedLoadableModule):
    def __init__(self, parent) -> None:
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("DiffuGTS")
        self.parent.categories = [_("Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["DiffuGTS for 3D Slicer developers"]
        self.parent.helpText = _(
            "Zero-shot tumor segmentation from text: type what to look for (one prompt per line, for example "
            "'kidney tumor'), press Segment, and get one editable segment per prompt, a heat map of where the "
            "model looked and, optionally, a pseudo-healthy version of the scan. Research software, not for "
            "clinical use.")
        self.parent.acknowledgementText = _(
            "Implements the DiffuGTS method (CVPR 2025) on a frozen medical diffusion model (NVIDIA MAISI, "
            "through MONAI).")


class DiffuGTSSlicerWidget(ScriptedLoadableModuleWidget):
    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        from DiffuGTSSlicerLib.qt_panel import QtPanel

        ui_widget = slicer.util.loadUI(self.resourcePath("UI/DiffuGTSSlicer.ui"))
        self.layout.addWidget(ui_widget)
        ui_widget.setMRMLScene(slicer.mrmlScene)
        self.panel = QtPanel(ui_widget, DiffuGTSSlicerLogic().getParameterNode)

    def enter(self) -> None:
        self.panel.refresh_setup()
        self.panel.set_shortcuts(True)

    def exit(self) -> None:
        self.panel.set_shortcuts(False)

    def cleanup(self) -> None:
        self.panel.close()


class DiffuGTSSlicerLogic(ScriptedLoadableModuleLogic):
    """For scripts: ``DiffuGTSSlicerLogic().segment(volumeNode, ["kidney tumor"])`` blocks until done, on the
    session's warm engine (the panel's): the engine starts once and a volume is sent once, however many calls.
    ``organ_mask``: a segmentation (its ``organ_segment``, else all its segments) or labelmap node to keep findings
    in; ``options``: Parameters fields (``server_url``/``server_token`` for a remote server)."""

    engine: ServerLogic | None = None  # shared by every instance, so that uploads are remembered across calls

    def segment(self, volume_node, prompts: list[str], segmentation_node=None, timeout: float | None = None,
                organ_mask=None, organ_segment: str = "", **options) -> LoadedResults:
        if DiffuGTSSlicerLogic.engine is None:
            DiffuGTSSlicerLogic.engine = ServerLogic(session_server())
        return DiffuGTSSlicerLogic.engine.run(volume_node, Parameters(prompts=list(prompts), **options),
                                              segmentation_node, organ_mask, organ_segment, timeout)


class DiffuGTSSlicerTest(ScriptedLoadableModuleTest):
    """Smoke test inside Slicer (Reload and Test); Testing/Python holds the detailed ones."""

    def runTest(self) -> None:
        slicer.mrmlScene.Clear()
        self.test_segment_the_bundled_demo_case()

    def test_segment_the_bundled_demo_case(self) -> None:
        from DiffuGTSSlicerLib.command import ENGINE_PARENT

        volume = slicer.util.loadVolume(str(ENGINE_PARENT / "diffugts" / "demo" / "lung1_crop_ct.nii.gz"))
        results = DiffuGTSSlicerLogic().segment(volume, ["lung tumor"], quality="fast", timeout=600)
        segmentation = results.segmentation_node.GetSegmentation()
        self.assertEqual(segmentation.GetNumberOfSegments(), 1)
        self.assertEqual(segmentation.GetNthSegment(0).GetName(), "lung tumor")
        self.assertTrue(0.0 <= results.rows[0].presence <= 1.0)
