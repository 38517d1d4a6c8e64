"""The module end to end with the REAL engine: its logic runs `diffugts segment` as a separate process (a launcher
script stands in for PythonSlicer, whose child is the real Python) on the bundled demo case and loads what the
engine wrote into a real MRML scene (slicer-core); Cancel mid-run kills the process tree and loads nothing."""

from __future__ import annotations

import time

import numpy as np
import psutil
import pytest
from slicer_support import Recorder, launcher, node_array, segment_mask, slicer_core, wait_for_children

slicer = slicer_core()

from diffugts.terminology import describe  # noqa: E402
from DiffuGTSSlicerLib import scene_io  # noqa: E402
from DiffuGTSSlicerLib.command import ENGINE_PARENT  # noqa: E402
from DiffuGTSSlicerLib.heat_map import COLOR_NODE_NAME  # noqa: E402
from DiffuGTSSlicerLib.logic import SegmentationLogic  # noqa: E402
from DiffuGTSSlicerLib.parameters import Parameters  # noqa: E402
from DiffuGTSSlicerLib.results import LoadedResults  # noqa: E402

DEMO = ENGINE_PARENT / "diffugts" / "demo" / "lung1_crop_ct.nii.gz"
PROMPT = "lung tumor"
# The stages `diffugts segment` reports, in order (diffugts/segment/pipeline.py and the backbone it calls).
ENGINE_STAGES = ("encode", "features", "reconstruct", "inpaint", "decode", "refine", "postprocess")

pytestmark = pytest.mark.slow


@pytest.fixture
def demo():
    scene = slicer.vtkMRMLScene()
    return scene, scene_io.load_volume(scene, DEMO, "lung1")


def node_ids(scene) -> list[str]:
    return [scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())]


def ijk_to_ras(node) -> np.ndarray:
    import vtk

    matrix = vtk.vtkMatrix4x4()
    (node.GetImageToWorldMatrix if isinstance(node, slicer.vtkOrientedImageData) else node.GetIJKToRASMatrix)(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def test_segment_runs_the_engine_and_loads_its_results_on_the_input_grid(demo, tmp_path):
    scene, volume = demo
    logic = SegmentationLogic(python=launcher(tmp_path))
    seen = Recorder(logic)
    logic.start(volume, Parameters(prompts=[PROMPT], quality="fast", device="cpu", load_pseudo_healthy=True,
                                   load_uncertainty=True))
    workspace = logic.job.workspace
    logic.wait(timeout=300)
    (loaded,) = seen.results
    assert isinstance(loaded, LoadedResults), f"{loaded}\n" + "\n".join(seen.log)

    segmentation = loaded.segmentation_node.GetSegmentation()
    (row,) = loaded.rows
    segment = segmentation.GetSegment(row.segment_id)
    assert segmentation.GetNumberOfSegments() == 1 and segment.GetName() == row.prompt == PROMPT
    assert segment.GetTerminology() == describe(PROMPT).terminology  # Neoplasm in the lung
    assert segment.GetColor() == pytest.approx(describe(PROMPT).color)
    labelmap = segment.GetRepresentation(slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName())
    np.testing.assert_allclose(ijk_to_ras(labelmap), ijk_to_ras(volume), atol=1e-6)
    mask = segment_mask(loaded.segmentation_node, row.segment_id, volume)
    voxel_ml = np.prod(volume.GetSpacing()) / 1000.0
    assert mask.sum() * voxel_ml == pytest.approx(row.volume_ml, abs=1e-3)  # the report's mL is this mask's
    assert 0.0 <= row.presence <= 1.0
    assert loaded.missing == [] and isinstance(loaded.warnings, list)
    assert loaded.table_node.GetCellText(0, 0) == PROMPT

    assert set(loaded.volumes) == {"attention_1", "pseudo_healthy", "uncertainty"}
    heat_color = scene.GetFirstNodeByName(COLOR_NODE_NAME).GetID()
    assert loaded.volumes["attention_1"].GetDisplayNode().GetColorNodeID() == heat_color
    for node in loaded.volumes.values():
        np.testing.assert_allclose(ijk_to_ras(node), ijk_to_ras(volume), atol=1e-6)
        assert node_array(node).shape == node_array(volume).shape
    heat = node_array(loaded.volumes["attention_1"])
    assert heat.min() >= 0.0 and heat.max() <= 1.0

    stages = list(dict.fromkeys(stage for stage, _ in seen.progress))
    assert stages == [stage for stage in ENGINE_STAGES if stage in stages]  # the engine's names, in its order
    assert {"encode", "inpaint", "refine", "postprocess"} <= set(stages)
    assert all(0.0 <= fraction <= 1.0 for _, fraction in seen.progress)
    assert not any(line.startswith("DIFFUGTS_PROGRESS") for line in seen.log)
    assert not workspace.exists()


def test_cancel_during_a_run_kills_the_engine_tree_and_loads_nothing(demo, tmp_path):
    scene, volume = demo
    nodes = node_ids(scene)
    logic = SegmentationLogic(python=launcher(tmp_path))
    seen = Recorder(logic)
    logic.start(volume, Parameters(prompts=[PROMPT], quality="fast", device="cpu"))
    workspace = logic.job.workspace
    tree = [psutil.Process(logic.runner.pid), *wait_for_children(logic.runner.pid, 1)]
    deadline = time.monotonic() + 120
    while not seen.progress:  # the engine is really working: it has reported its first stage
        assert logic.poll() and time.monotonic() < deadline, "\n".join(seen.log)
        time.sleep(0.05)
    logic.cancel()
    logic.wait(timeout=30)
    assert seen.results == ["Cancelled."]
    assert all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in tree)
    assert node_ids(scene) == nodes
    assert not workspace.exists() and not logic.running
