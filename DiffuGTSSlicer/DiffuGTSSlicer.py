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

from DiffuGTSSlicerLib.i18n import _
from DiffuGTSSlicerLib.logic import SegmentationLogic
from DiffuGTSSlicerLib.parameters import Parameters
from DiffuGTSSlicerLib.results import LoadedResults


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

    def cleanup(self) -> None:
        self.panel.close()


class DiffuGTSSlicerLogic(ScriptedLoadableModuleLogic):
    """For scripts: ``DiffuGTSSlicerLogic().segment(volumeNode, ["kidney tumor"])`` blocks until done."""

    def segment(self, volume_node, prompts: list[str], segmentation_node=None, timeout: float | None = None,
                **options) -> LoadedResults:
        logic = SegmentationLogic()
        outcome: dict[str, object] = {}
        logic.finished.connect(lambda results: outcome.update(results=results))
        logic.failed.connect(lambda message: outcome.update(error=message))
        logic.start(volume_node, Parameters(prompts=list(prompts), **options), segmentation_node)
        logic.wait(timeout)
        if "error" in outcome:
            raise RuntimeError(outcome["error"])
        return outcome["results"]


class DiffuGTSSlicerTest(ScriptedLoadableModuleTest):
    """Smoke test inside Slicer (Reload and Test); Testing/Python holds the detailed ones."""

    def runTest(self) -> None:
        slicer.mrmlScene.Clear()
        self.test_segment_runs_engine_and_reports()

    def test_segment_runs_engine_and_reports(self) -> None:
        import numpy as np

        volume = slicer.util.addVolumeFromArray(np.zeros((8, 16, 16), dtype=np.int16), name="blank")
        try:
            results = DiffuGTSSlicerLogic().segment(volume, ["kidney tumor"], timeout=600)
        except RuntimeError as error:  # an engine without `segment` says so in one clear line
            self.assertIn("not available yet", str(error))
            return
        self.assertEqual(results.segmentation_node.GetSegmentation().GetNumberOfSegments(), 1)
        self.assertEqual(results.rows[0].prompt, "kidney tumor")
