"""Move volumes and segmentations between the MRML scene and files, with MRML storage nodes only
(no application needed, so the same code runs in Slicer and against slicer-core in tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import slicer

from .i18n import _


_own_logics: dict[int, Any] = {}


def segmentations_logic(scene: Any) -> Any:
    """Slicer's Segmentations logic; without the application, one made for ``scene`` (it registers the
    segmentation converters, without which no segment can hold a labelmap)."""
    modules = getattr(slicer, "modules", None)
    if modules is not None and hasattr(modules, "segmentations"):
        return modules.segmentations.logic()
    key = id(scene)
    if key not in _own_logics:
        logic = slicer.vtkSlicerSegmentationsModuleLogic()
        logic.SetMRMLScene(scene)
        _own_logics[key] = logic
    return _own_logics[key]


def export_volume(volume_node: Any, path: str | Path) -> Path:
    """Write a scalar volume with its exact geometry (NRRD keeps spacing, origin and an oblique direction)."""
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    storage.SetFileName(str(path))
    storage.SetUseCompression(False)
    if not storage.WriteData(volume_node):
        raise OSError(_("Could not write the input volume to {path}").format(path=path))
    return Path(path)


def load_volume(scene: Any, path: str | Path, name: str) -> Any:
    """A new scalar volume node read from ``path``."""
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    storage.SetFileName(str(path))
    if not storage.ReadData(node):
        scene.RemoveNode(node)
        raise OSError(_("Could not read the volume {path}").format(path=path))
    node.CreateDefaultDisplayNodes()
    return node


def read_segmentation(scene: Any, path: str | Path) -> Any:
    """A new (temporary) segmentation node read from a .seg.nrrd file."""
    segmentations_logic(scene)
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    storage = slicer.vtkMRMLSegmentationStorageNode()
    storage.SetFileName(str(path))
    if not storage.ReadData(node):
        scene.RemoveNode(node)
        raise OSError(_("Could not read the segmentation {path}").format(path=path))
    return node


def write_segmentation(segmentation_node: Any, path: str | Path) -> Path:
    """Save a segmentation node as .seg.nrrd with Slicer's own storage node."""
    storage = slicer.vtkMRMLSegmentationStorageNode()
    storage.SetFileName(str(path))
    if not storage.WriteData(segmentation_node):
        raise OSError(_("Could not write the segmentation to {path}").format(path=path))
    return Path(path)


def export_mask(mask_node: Any, reference_volume: Any, path: str | Path, segment_id: str = "") -> Path:
    """Write a mask on ``reference_volume``'s grid: a segmentation's segments together as one labelmap (only
    ``segment_id`` when given), or a labelmap (or scalar) volume as it is."""
    if not mask_node.IsA("vtkMRMLSegmentationNode"):
        return export_volume(mask_node, path)
    scene = mask_node.GetScene()
    segmentation = mask_node.GetSegmentation()
    if segment_id and segmentation.GetSegment(segment_id) is None:
        raise OSError(_("The segmentation {name} has no segment {segment}").format(name=mask_node.GetName(),
                                                                                   segment=segment_id))
    ids = _string_array([segment_id] if segment_id else
                        [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())])
    labelmap = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    try:
        if not segmentations_logic(scene).ExportSegmentsToLabelmapNode(mask_node, ids, labelmap, reference_volume):
            raise OSError(_("Could not put the mask {name} on the input's grid").format(name=mask_node.GetName()))
        return export_volume(labelmap, path)
    finally:
        scene.RemoveNode(labelmap)


def _string_array(values: list[str]) -> Any:
    import vtk

    array = vtk.vtkStringArray()
    for value in values:
        array.InsertNextValue(value)
    return array
