"""The heat-map look: a color table from transparent dark red through red and orange to yellow, range 0..1."""

from __future__ import annotations

from typing import Any

COLOR_NODE_NAME = "DiffuGTS heat map"
LEVELS = 256


def heat_map_color_node(scene: Any) -> Any:
    """The scene's heat-map color table, created once."""
    existing = scene.GetFirstNodeByName(COLOR_NODE_NAME)
    if existing is not None:
        return existing
    node = scene.AddNewNodeByClass("vtkMRMLColorTableNode", COLOR_NODE_NAME)
    node.SetTypeToUser()
    node.SetNumberOfColors(LEVELS)
    for index in range(LEVELS):
        t = index / (LEVELS - 1)
        red, green, blue = min(1.0, 0.4 + 1.2 * t), max(0.0, min(1.0, 2.0 * t - 0.6)), max(0.0, 4.0 * t - 3.0)
        node.SetColor(index, f"{t:.3f}", red, green, blue, 0.0 if index == 0 else min(1.0, 0.3 + t))
    return node


def apply_heat_map(volume_node: Any) -> None:
    """Show ``volume_node`` (values in [0, 1]) with the heat-map colors, window covering exactly 0..1."""
    display = volume_node.GetDisplayNode()
    if display is None:
        volume_node.CreateDefaultDisplayNodes()
        display = volume_node.GetDisplayNode()
    display.SetAndObserveColorNodeID(heat_map_color_node(volume_node.GetScene()).GetID())
    display.AutoWindowLevelOff()
    display.SetWindowLevelMinMax(0.0, 1.0)
