"""Load what ``diffugts segment`` wrote into the scene, following its report.json (written last, so its presence
means the run completed): one segment per prompt, the chosen maps as volumes, a results table and the engine's
warnings. When loading fails half-way, everything it added is removed again."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import slicer
import vtk

from diffugts.report_schema import REPORT_SCHEMA  # the contract this loader reads

from . import scene_io
from .heat_map import apply_heat_map
from .i18n import _
from .parameters import Parameters

REPORT_FILE = "report.json"
TABLE_COLUMNS = ("Prompt", "Presence score", "Volume (mL)")


class ResultsError(Exception):
    """The engine's output cannot be loaded; the message names what is missing or broken."""


@dataclass
class ResultRow:
    prompt: str
    segment_id: str
    presence: float  # the engine's presence score in [0, 1], for ranking: not a probability of disease
    volume_ml: float
    found: bool = True  # False: presence below the calibrated threshold, an empty segment


@dataclass
class LoadedResults:
    segmentation_node: Any
    rows: list[ResultRow]
    table_node: Any
    volumes: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def read_report(out_dir: str | Path) -> dict[str, Any]:
    """report.json of a completed run; ResultsError when it is absent, unreadable or of another schema."""
    path = Path(out_dir) / REPORT_FILE
    if not path.is_file():
        raise ResultsError(_("The engine wrote no {file} in {folder}: the run did not complete.").format(
            file=REPORT_FILE, folder=out_dir))
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ResultsError(_("Could not read {path}: {error}").format(path=path, error=error)) from error
    schema = report.get("schema") if isinstance(report, dict) else None
    if schema != REPORT_SCHEMA or not isinstance(report.get("prompts"), list):
        raise ResultsError(_("{path} has schema {schema}; this module reads {expected}. Update the module and "
                             "its engine together.").format(path=path, schema=schema, expected=REPORT_SCHEMA))
    return report


def missing_files(out_dir: str | Path, report: dict[str, Any]) -> list[str]:
    """The files report.json names that are not in ``out_dir``."""
    names = [*report.get("outputs", {}).values(),
             *(name for entry in report["prompts"] for name in entry.get("files", {}).values())]
    return [name for name in dict.fromkeys(names) if not (Path(out_dir) / name).is_file()]


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name (2)``, ``name (3)``... so existing segments are never overwritten."""
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{name} ({number})"
    return candidate


def segment_names(segmentation_node: Any) -> set[str]:
    segmentation = segmentation_node.GetSegmentation()
    return {segmentation.GetNthSegment(i).GetName() for i in range(segmentation.GetNumberOfSegments())}


def load_results(out_dir: str | Path, input_volume: Any, parameters: Parameters,
                 segmentation_node: Any | None = None) -> LoadedResults:
    """Add one segment per prompt to ``segmentation_node`` (a new node when None) and load the chosen maps;
    on any error, remove every node and segment added so far and raise."""
    out_dir = Path(out_dir)
    report = read_report(out_dir)
    missing = missing_files(out_dir, report)
    segmentation_file = report.get("outputs", {}).get("segmentation")
    if not segmentation_file or segmentation_file in missing:
        raise ResultsError(_("The engine's report names no segmentation file that exists in {folder}.").format(
            folder=out_dir))
    scene = input_volume.GetScene()
    if scene is None:
        raise ResultsError(_("The input volume was removed from the scene before the results arrived."))
    nodes_before = {scene.GetNthNode(i).GetID() for i in range(scene.GetNumberOfNodes())}
    added_segments: list[str] = []
    try:
        if segmentation_node is None:
            segmentation_node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode",
                                                        f"{input_volume.GetName()} DiffuGTS")
            segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(input_volume)
            segmentation_node.SetAndObserveTransformNodeID(input_volume.GetTransformNodeID())
        segmentation_node.CreateDefaultDisplayNodes()  # a user's node keeps its transform: see _add_segments
        names = [entry["segment"] for entry in report["prompts"]]
        added_segments += _add_segments(scene, out_dir / segmentation_file, segmentation_node, names,
                                        input_volume)
        rows = [ResultRow(entry["prompt"], segment_id, float(entry["presence"]), float(entry["volume_ml"]),
                          bool(entry.get("found", True)))
                for entry, segment_id in zip(report["prompts"], added_segments)]
        volumes = _load_volumes(scene, out_dir, report, input_volume, parameters, missing)
        segmentation_node.CreateClosedSurfaceRepresentation()
        table = _results_table(scene, input_volume, rows)
    except Exception:
        if segmentation_node is not None and segmentation_node.GetScene() is scene:
            for segment_id in added_segments:
                segmentation_node.GetSegmentation().RemoveSegment(segment_id)
        _remove_nodes_added_since(scene, nodes_before)
        raise
    return LoadedResults(segmentation_node, rows, table, volumes, [str(w) for w in report.get("warnings", [])],
                         missing)


def _add_segments(scene: Any, path: Path, target: Any, names: list[str], input_volume: Any) -> list[str]:
    """Copy the segments called ``names`` (with the engine's color and terminology) into ``target``. They lie on
    the input volume's grid, so they are carried from its transform's frame into the target's, which stays put:
    a user's segmentation under another transform (or none) is never moved, nor are its segments."""
    source = scene_io.read_segmentation(scene, path)
    try:
        _carry(source, input_volume.GetParentTransformNode(), target.GetParentTransformNode())
        source_segmentation = source.GetSegmentation()
        taken = segment_names(target)
        added: list[str] = []
        for name in names:
            source_id = source_segmentation.GetSegmentIdBySegmentName(name)
            if not source_id:
                raise ResultsError(_("{file} has no segment named {name!r}, which the report lists.").format(
                    file=path.name, name=name))
            segment = slicer.vtkSegment()
            segment.DeepCopy(source_segmentation.GetSegment(source_id))
            segment.SetName(unique_name(name, taken))
            segment.SetNameAutoGenerated(False)
            segment.SetColorAutoGenerated(False)
            taken.add(segment.GetName())
            segment_id = target.GetSegmentation().GenerateUniqueSegmentID(segment.GetName())
            target.GetSegmentation().AddSegment(segment, segment_id)
            added.append(segment_id)
        return added
    finally:
        scene.RemoveNode(source)


def _carry(node: Any, source_frame: Any, target_frame: Any) -> None:
    """Transform ``node`` from ``source_frame``'s coordinates into ``target_frame``'s (transform nodes; None: world)."""
    if source_frame is target_frame:
        return
    matrix = vtk.vtkMatrix4x4()
    if slicer.vtkMRMLTransformNode.GetMatrixTransformBetweenNodes(source_frame, target_frame, matrix):
        node.ApplyTransformMatrix(matrix)  # linear: the voxels' geometry changes, nothing is resampled
        return
    transform = vtk.vtkGeneralTransform()  # a warped (non-linear) frame: resampled
    slicer.vtkMRMLTransformNode.GetTransformBetweenNodes(source_frame, target_frame, transform)
    node.ApplyTransform(transform)


def _load_volumes(scene: Any, out_dir: Path, report: dict[str, Any], input_volume: Any, parameters: Parameters,
                  missing: list[str]) -> dict[str, Any]:
    """The optional maps the person asked for, each placed like the input (same parent transform)."""
    base = input_volume.GetName()
    outputs = report.get("outputs", {})
    wanted: list[tuple[str | None, str, bool]] = []
    if parameters.load_heat_map:
        wanted += [(entry.get("files", {}).get("attention"), f"{base} heat map: {entry['prompt']}", True)
                   for entry in report["prompts"]]
    if parameters.load_pseudo_healthy:
        wanted.append((outputs.get("pseudo_healthy"), f"{base} pseudo-healthy", False))
    if parameters.load_uncertainty:
        wanted.append((outputs.get("uncertainty"), f"{base} uncertainty", True))
    volumes: dict[str, Any] = {}
    for file_name, node_name, heat in wanted:
        if file_name and file_name not in missing:
            node = scene_io.load_volume(scene, out_dir / file_name, node_name)
            node.SetAndObserveTransformNodeID(input_volume.GetTransformNodeID())
            if heat:
                apply_heat_map(node)
            volumes[file_name.split(".")[0]] = node
    return volumes


def _results_table(scene: Any, input_volume: Any, rows: list[ResultRow]) -> Any:
    table = scene.AddNewNodeByClass("vtkMRMLTableNode", f"{input_volume.GetName()} DiffuGTS results")
    for column in TABLE_COLUMNS:
        table.AddColumn().SetName(column)
    for row in rows:
        index = table.AddEmptyRow()
        for column, value in enumerate(row_texts(row)):
            table.SetCellText(index, column, value)
    return table


def row_texts(row: ResultRow) -> tuple[str, str, str]:
    """The results table's cells for one prompt (also used by the panel's table); a finding below the presence
    threshold says "not found" where its volume would be."""
    return row.prompt, f"{row.presence:.2f}", f"{row.volume_ml:.2f}" if row.found else "not found"


def _remove_nodes_added_since(scene: Any, before: set[str]) -> None:
    added = [scene.GetNthNode(i) for i in range(scene.GetNumberOfNodes())]
    for node in reversed(added):
        if node.GetID() not in before and node.GetScene() is scene:
            scene.RemoveNode(node)
