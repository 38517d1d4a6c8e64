"""Correction clicks on loaded results: positive and negative points (Markups point lists) and a box (a Markups
ROI) per prompt. Each placement, move or removal sends that prompt again with all its clicks, and its segment,
heat map and table row change in place (server_logic.Update). No Qt: the panel wires buttons and keys here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import slicer

from .i18n import _
from .parameters import Parameters
from .results import LoadedResults
from .server_logic import ServerLogic, Update
from .signals import Signal

KINDS = ("positive", "negative", "box")
NODE_CLASS = {"positive": "vtkMRMLMarkupsFiducialNode", "negative": "vtkMRMLMarkupsFiducialNode",
              "box": "vtkMRMLMarkupsROINode"}
COLORS = {"positive": (0.2, 0.9, 0.2), "negative": (0.95, 0.2, 0.2), "box": (1.0, 0.85, 0.1)}
NODE_NAMES = {"positive": "DiffuGTS + {prompt}", "negative": "DiffuGTS - {prompt}", "box": "DiffuGTS box {prompt}"}
EVENTS = ("PointPositionDefinedEvent", "PointEndInteractionEvent", "PointRemovedEvent")


@dataclass
class PromptClicks:
    """The markups nodes of one prompt (created when first used) and their observer tags."""

    nodes: dict[str, Any] = field(default_factory=dict)
    observers: list[tuple[Any, int]] = field(default_factory=list)


def world_to_volume(volume: Any, point: tuple[float, float, float]) -> list[float]:
    """A world (scene) RAS point in the volume's own RAS frame, the one its exported file is written in."""
    parent = volume.GetParentTransformNode()
    if parent is None:
        return [float(v) for v in point]
    import vtk

    transform = vtk.vtkGeneralTransform()
    slicer.vtkMRMLTransformNode.GetTransformBetweenNodes(None, parent, transform)
    return [float(v) for v in transform.TransformPoint(point)]


def start_placing(node: Any, persistent: bool) -> None:
    """Slicer's place mode for ``node``: clicks in the views add points to it (Escape or right-click ends it)."""
    scene = node.GetScene()
    selection = scene.GetNodeByID("vtkMRMLSelectionNodeSingleton")
    interaction = scene.GetNodeByID("vtkMRMLInteractionNodeSingleton")
    if selection is None or interaction is None:
        return
    selection.SetReferenceActivePlaceNodeClassName(node.GetClassName())
    selection.SetActivePlaceNodeID(node.GetID())
    interaction.SetPlaceModePersistence(1 if persistent else 0)
    interaction.SetCurrentInteractionMode(interaction.Place)


class ClickSession:
    """Clicks for the prompts of the last results. Signal: sent(prompt) when a prompt was sent again; its outcome
    comes from ``logic`` (updated, failed)."""

    def __init__(self, logic: ServerLogic, organ: Callable[[], tuple[Any, str]] = lambda: (None, "")) -> None:
        self.logic = logic
        self.organ = organ  # the organ selector: (segmentation or labelmap node, segment id), or (None, "")
        self.results: LoadedResults | None = None
        self.input_volume: Any = None
        self.parameters: Parameters | None = None
        self.selected = 0
        self.prompts: dict[int, PromptClicks] = {}
        self.pending: set[int] = set()  # prompts changed while a job ran: sent when it ends
        self.sent = Signal()
        for signal in (logic.updated, logic.finished):
            signal.connect(lambda *_args: self._send_pending())
        logic.failed.connect(lambda _message: self.pending.clear())  # cancelled or failed: the next click sends all

    def set_results(self, results: LoadedResults, input_volume: Any, parameters: Parameters) -> None:
        """Clicks now apply to these results (the markups of earlier results stay in the scene, unobserved)."""
        self._forget()
        self.results, self.input_volume, self.parameters, self.selected = results, input_volume, parameters, 0

    def select(self, index: int) -> None:
        """The prompt (results table row) the next clicks are for; only its markups are shown."""
        if self.results is not None and 0 <= index < len(self.results.rows):
            self.selected = index
            for number, clicks in self.prompts.items():
                for node in clicks.nodes.values():
                    if node.GetDisplayNode() is not None:
                        node.GetDisplayNode().SetVisibility(number == index)

    def problem(self) -> str | None:
        if self.results is None or self.input_volume is None or self.input_volume.GetScene() is None:
            return _("Segment first: clicks correct the result of a prompt.")
        return None

    def node(self, kind: str, index: int | None = None) -> Any:
        """The markups node of ``kind`` for prompt ``index`` (default: the selected one), made when first asked."""
        index = self.selected if index is None else index
        clicks = self.prompts.setdefault(index, PromptClicks())
        node = clicks.nodes.get(kind)
        if node is None or node.GetScene() is None:
            scene = self.input_volume.GetScene()
            prompt = self.results.rows[index].prompt
            node = scene.AddNewNodeByClass(NODE_CLASS[kind], NODE_NAMES[kind].format(prompt=prompt))
            node.CreateDefaultDisplayNodes()
            display = node.GetDisplayNode()
            if display is not None:
                display.SetSelectedColor(*COLORS[kind])
                display.SetColor(*COLORS[kind])
            if kind != "box":
                node.SetMarkupLabelFormat("+" if kind == "positive" else "-")
            clicks.nodes[kind] = node
            for event in EVENTS:
                tag = node.AddObserver(getattr(slicer.vtkMRMLMarkupsNode, event),
                                       lambda _caller, _event, i=index: self.changed(i))
                clicks.observers.append((node, tag))
        return node

    def place(self, kind: str) -> str | None:
        """Start placing a point (or the box) for the selected prompt; the reason it cannot, or None."""
        problem = self.problem()
        if problem:
            return problem
        node = self.node(kind)
        if kind == "box" and node.GetNumberOfControlPoints() > 0:
            node.RemoveAllControlPoints()  # one box per prompt: placing again draws a new one
        start_placing(node, persistent=kind != "box")
        return None

    def clear(self) -> None:
        """Remove the selected prompt's clicks (its segment stays as it is)."""
        clicks = self.prompts.get(self.selected)
        if clicks is not None:
            for node, tag in clicks.observers:
                node.RemoveObserver(tag)
            for node in clicks.nodes.values():
                if node.GetScene() is not None:
                    node.GetScene().RemoveNode(node)
            del self.prompts[self.selected]

    def job_clicks(self, index: int) -> tuple[list[dict], list[dict]]:
        """The job's points and boxes for prompt ``index``, RAS in the input volume's own frame."""
        prompt = self.results.rows[index].prompt
        nodes = self.prompts.get(index, PromptClicks()).nodes
        points = []
        for kind in ("positive", "negative"):
            node = nodes.get(kind)
            for n in range(node.GetNumberOfControlPoints() if node is not None else 0):
                if node.GetNthControlPointPositionStatus(n) != node.PositionDefined:
                    continue
                position = [0.0, 0.0, 0.0]
                node.GetNthControlPointPositionWorld(n, position)
                points.append({"prompt": prompt, "position": world_to_volume(self.input_volume, position),
                               "positive": kind == "positive"})
        boxes = []
        box = nodes.get("box")
        placed = box is not None and box.GetNumberOfControlPoints() > 0
        if placed and box.GetNthControlPointPositionStatus(0) == box.PositionDefined:
            bounds = [0.0] * 6
            box.GetRASBounds(bounds)
            corners = [world_to_volume(self.input_volume, (bounds[i], bounds[2 + j], bounds[4 + k]))
                       for i in (0, 1) for j in (0, 1) for k in (0, 1)]
            boxes.append({"prompt": prompt, "min": [min(c[a] for c in corners) for a in range(3)],
                          "max": [max(c[a] for c in corners) for a in range(3)]})
        return points, boxes

    def changed(self, index: int) -> None:
        """A click of prompt ``index`` was placed, moved or removed: send it now, or when the running job ends."""
        self.pending.add(index)
        self._send_pending()

    def send(self, index: int) -> None:
        """Send prompt ``index`` with its clicks and the organ selected; its segment changes in place."""
        if self.problem():
            return
        points, boxes = self.job_clicks(index)
        organ_node, organ_segment = self.organ()
        self.logic.start(self.input_volume, self.parameters, organ_mask=organ_node, organ_segment=organ_segment,
                         update=Update(self.results, index, points, boxes))
        self.sent.emit(self.results.rows[index].prompt)

    def _send_pending(self) -> None:
        if self.logic.running or not self.pending or self.problem():
            return
        index = min(self.pending)
        self.pending.discard(index)
        try:
            self.send(index)
        except (OSError, ValueError, RuntimeError) as error:
            self.pending.clear()
            self.logic.failed.emit(str(error))

    def _forget(self) -> None:
        for clicks in self.prompts.values():
            for node, tag in clicks.observers:
                node.RemoveObserver(tag)
        self.prompts.clear()
        self.pending.clear()
