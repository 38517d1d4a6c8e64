"""The "Load demo case" button: the small real CT bundled with the engine and the prompt it is made for."""

from __future__ import annotations

from typing import Any

from . import scene_io

DEMO_NAME = "DiffuGTS demo CT (lung1)"


def load_demo_case(scene: Any) -> tuple[Any, str]:
    """(the demo volume, loaded once per scene, and its prompt)."""
    from diffugts.demo import DEMO_IMAGE, DEMO_PROMPT  # pure paths and text, from the bundled engine

    existing = scene.GetFirstNodeByName(DEMO_NAME)
    if existing is not None and existing.IsA("vtkMRMLScalarVolumeNode"):
        return existing, DEMO_PROMPT
    return scene_io.load_volume(scene, DEMO_IMAGE, DEMO_NAME), DEMO_PROMPT
