"""Apply a correction (clicks, a box, an organ) of one prompt in place: its segment keeps its id, name, color and
place in the user's segmentation and gets the new voxels; its heat map and its row of the results table follow."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import slicer

from . import scene_io
from .heat_map import apply_heat_map
from .i18n import _
from .parameters import Parameters
from .results import LoadedResults, ResultsError, _carry, read_report, row_texts


def update_prompt(out_dir: str | Path, results: LoadedResults, index: int, input_volume: Any,
                  parameters: Parameters, before_change: Callable[[Any], None] | None = None) -> None:
    """Replace prompt ``index`` of ``results`` with the one-prompt run in ``out_dir``; ``before_change`` is called
    with the segmentation node first (Segment Editor's undo saves its state there)."""
    out_dir = Path(out_dir)
    report = read_report(out_dir)
    row = results.rows[index]
    entry = next((e for e in report["prompts"] if e["prompt"] == row.prompt), None)
    segmentation_file = report.get("outputs", {}).get("segmentation")
    if entry is None or not segmentation_file:
        raise ResultsError(_("The engine's report has no result for {prompt!r}.").format(prompt=row.prompt))
    target = results.segmentation_node
    if target.GetScene() is None or target.GetSegmentation().GetSegment(row.segment_id) is None:
        raise ResultsError(_("The segment of {prompt!r} was deleted; press Segment again.").format(prompt=row.prompt))
    scene = target.GetScene()
    source = scene_io.read_segmentation(scene, out_dir / segmentation_file)
    try:
        _carry(source, input_volume.GetParentTransformNode(), target.GetParentTransformNode())
        source_id = source.GetSegmentation().GetSegmentIdBySegmentName(entry["segment"])
        if not source_id:
            raise ResultsError(_("{file} has no segment named {name!r}, which the report lists.").format(
                file=segmentation_file, name=entry["segment"]))
        labelmap = slicer.vtkOrientedImageData()
        source.GetBinaryLabelmapRepresentation(source_id, labelmap)
        if before_change is not None:
            before_change(target)
        logic = slicer.vtkSlicerSegmentationsModuleLogic
        if not logic.SetBinaryLabelmapToSegment(labelmap, target, row.segment_id, logic.MODE_REPLACE):
            raise ResultsError(_("Could not update the segment of {prompt!r}.").format(prompt=row.prompt))
    finally:
        scene.RemoveNode(source)
    row.presence, row.volume_ml = float(entry["presence"]), float(entry["volume_ml"])
    row.found = bool(entry.get("found", True))
    _update_heat_map(out_dir, results, entry, input_volume, parameters)
    if results.table_node is not None and results.table_node.GetScene() is not None:
        for column, text in enumerate(row_texts(row)):
            results.table_node.SetCellText(index, column, text)


def _update_heat_map(out_dir: Path, results: LoadedResults, entry: dict, input_volume: Any,
                     parameters: Parameters) -> None:
    """Read the prompt's new attention map into its heat-map volume (made now if it was not loaded before)."""
    file_name = entry.get("files", {}).get("attention")
    if not parameters.load_heat_map or not file_name or not (out_dir / file_name).is_file():
        return
    name = f"{input_volume.GetName()} heat map: {entry['prompt']}"
    node = next((n for n in results.volumes.values() if n.GetName() == name and n.GetScene() is not None), None)
    if node is None:
        node = scene_io.load_volume(input_volume.GetScene(), out_dir / file_name, name)
        node.SetAndObserveTransformNodeID(input_volume.GetTransformNodeID())
        results.volumes[f"attention {entry['prompt']}"] = node
    else:
        storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
        storage.SetFileName(str(out_dir / file_name))
        if not storage.ReadData(node):
            raise OSError(_("Could not read the volume {path}").format(path=out_dir / file_name))
    apply_heat_map(node)
