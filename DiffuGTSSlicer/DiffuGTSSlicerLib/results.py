"""Load what ``diffugts segment`` wrote into the scene: segments, heat maps, pseudo-healthy and uncertainty
volumes, and a results table; say plainly which expected files are missing."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import slicer
from diffugts.terminology import describe_all

from . import scene_io
from .heat_map import apply_heat_map
from .i18n import _
from .parameters import Parameters

SEGMENTATION_FILE = "segmentation.seg.nrrd"
REPORT_FILE = "report.json"
COMMON_FILES = (SEGMENTATION_FILE, "labels.nii.gz", "pseudo_healthy.nii.gz", "uncertainty.nii.gz", REPORT_FILE)
PER_PROMPT_FILES = ("probability_{n}.nii.gz", "attention_{n}.nii.gz")
TABLE_COLUMNS = ("Prompt", "Presence", "Volume (mL)")


class ResultsError(Exception):
    """The engine's output cannot be loaded; the message names what is missing or broken."""


@dataclass
class ResultRow:
    prompt: str
    segment_id: str
    presence: float | None
    volume_ml: float


@dataclass
class LoadedResults:
    segmentation_node: Any
    rows: list[ResultRow]
    table_node: Any
    volumes: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def expected_files(prompt_count: int) -> list[str]:
    """Every file ``diffugts segment`` writes for ``prompt_count`` prompts (numbered from 1)."""
    per_prompt = [pattern.format(n=n) for n in range(1, prompt_count + 1) for pattern in PER_PROMPT_FILES]
    return [*COMMON_FILES, *per_prompt]


def missing_files(out_dir: str | Path, prompt_count: int) -> list[str]:
    return [name for name in expected_files(prompt_count) if not (Path(out_dir) / name).is_file()]


def read_report(out_dir: str | Path) -> dict[str, Any]:
    """report.json, or an empty report when the engine wrote none or it is not valid JSON."""
    path = Path(out_dir) / REPORT_FILE
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return report if isinstance(report, dict) else {}


def presence_scores(report: dict[str, Any], prompt_count: int) -> list[float | None]:
    """Per-prompt presence from report["prompts"] entries ({"prompt": ..., "presence": ...}) when given."""
    entries = report.get("prompts") or []
    scores: list[float | None] = []
    for index in range(prompt_count):
        entry = entries[index] if index < len(entries) else None
        value = entry.get("presence") if isinstance(entry, dict) else None
        scores.append(float(value) if isinstance(value, (int, float)) else None)
    return scores


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
    """Add one segment per prompt to ``segmentation_node`` (a new node when None) and load the chosen maps."""
    out_dir = Path(out_dir)
    prompts = parameters.prompts
    missing = missing_files(out_dir, len(prompts))
    if SEGMENTATION_FILE in missing:
        raise ResultsError(_("The engine wrote no {file} in {folder}; missing: {missing}.").format(
            file=SEGMENTATION_FILE, folder=out_dir, missing=", ".join(missing)))
    scene = input_volume.GetScene()
    if scene is None:
        raise ResultsError(_("The input volume was removed from the scene before the results arrived."))
    if segmentation_node is None:
        segmentation_node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", f"{input_volume.GetName()} DiffuGTS")
        segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(input_volume)
    segmentation_node.CreateDefaultDisplayNodes()
    segmentation_node.SetAndObserveTransformNodeID(input_volume.GetTransformNodeID())
    segment_ids = _add_segments(scene, out_dir / SEGMENTATION_FILE, segmentation_node, prompts)
    counts = scene_io.segment_voxel_counts(segmentation_node, input_volume)
    voxel_ml = _voxel_volume_ml(input_volume)
    scores = presence_scores(read_report(out_dir), len(prompts))
    rows = [ResultRow(prompts[i] if i < len(prompts) else segment_id, segment_id,
                      scores[i] if i < len(scores) else None, counts.get(segment_id, 0) * voxel_ml)
            for i, segment_id in enumerate(segment_ids)]
    volumes = _load_volumes(scene, out_dir, input_volume, parameters)
    segmentation_node.CreateClosedSurfaceRepresentation()
    return LoadedResults(segmentation_node, rows, _results_table(scene, input_volume, rows), volumes, missing)


def _add_segments(scene: Any, path: Path, target: Any, prompts: list[str]) -> list[str]:
    source = scene_io.read_segmentation(scene, path)
    try:
        descriptions = describe_all(prompts)
        taken = segment_names(target)
        source_segmentation = source.GetSegmentation()
        added: list[str] = []
        for index in range(source_segmentation.GetNumberOfSegments()):
            segment = slicer.vtkSegment()
            segment.DeepCopy(source_segmentation.GetNthSegment(index))
            if index < len(descriptions):
                description = descriptions[index]
                segment.SetName(description.name)
                segment.SetColor(*description.color)
                segment.SetTag(slicer.vtkSegment.GetTerminologyEntryTagName(), description.terminology)
            segment.SetName(unique_name(segment.GetName(), taken))
            segment.SetNameAutoGenerated(False)
            segment.SetColorAutoGenerated(False)
            taken.add(segment.GetName())
            segment_id = target.GetSegmentation().GenerateUniqueSegmentID(segment.GetName())
            target.GetSegmentation().AddSegment(segment, segment_id)
            added.append(segment_id)
        return added
    finally:
        scene.RemoveNode(source)


def _voxel_volume_ml(volume_node: Any) -> float:
    spacing = volume_node.GetSpacing()
    return spacing[0] * spacing[1] * spacing[2] / 1000.0


def _load_volumes(scene: Any, out_dir: Path, input_volume: Any, parameters: Parameters) -> dict[str, Any]:
    """The optional maps the person asked for, each placed like the input (same parent transform)."""
    base = input_volume.GetName()
    wanted: list[tuple[str, str, bool]] = []
    if parameters.load_heat_map:
        wanted += [(f"attention_{n}.nii.gz", f"{base} heat map: {prompt}", True)
                   for n, prompt in enumerate(parameters.prompts, start=1)]
    if parameters.load_pseudo_healthy:
        wanted.append(("pseudo_healthy.nii.gz", f"{base} pseudo-healthy", False))
    if parameters.load_uncertainty:
        wanted.append(("uncertainty.nii.gz", f"{base} uncertainty", True))
    volumes: dict[str, Any] = {}
    for file_name, node_name, heat in wanted:
        if (out_dir / file_name).is_file():
            node = scene_io.load_volume(scene, out_dir / file_name, node_name)
            node.SetAndObserveTransformNodeID(input_volume.GetTransformNodeID())
            if heat:
                apply_heat_map(node)
            volumes[re.sub(r"\.nii\.gz$", "", file_name)] = node
    return volumes


def _results_table(scene: Any, input_volume: Any, rows: list[ResultRow]) -> Any:
    table = scene.AddNewNodeByClass("vtkMRMLTableNode", f"{input_volume.GetName()} DiffuGTS results")
    for column in TABLE_COLUMNS:
        table.AddColumn().SetName(column)
    for row in rows:
        index = table.AddEmptyRow()
        presence = "-" if row.presence is None else f"{row.presence:.2f}"
        for column, value in enumerate((row.prompt, presence, f"{row.volume_ml:.2f}")):
            table.SetCellText(index, column, value)
    return table
