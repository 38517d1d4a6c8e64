"""The panel's behaviour (PanelController) driven with a recording view, the real logic, a real MRML scene and
the real engine: Segment becomes Cancel and back, validation messages, stage names and the status after a run."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from slicer_support import (Settings, add_oblique_volume, engine_blocked_on, launcher,
                            slicer_core, wait_for_children)

slicer = slicer_core()

from DiffuGTSSlicerLib.engine_server import LocalServer  # noqa: E402
from DiffuGTSSlicerLib.panel import PanelController, finished_status, stage_label  # noqa: E402
from DiffuGTSSlicerLib.parameters import Parameters  # noqa: E402
from DiffuGTSSlicerLib.presets import PromptHistory  # noqa: E402
from DiffuGTSSlicerLib.results import LoadedResults  # noqa: E402
from DiffuGTSSlicerLib.server_logic import ServerLogic  # noqa: E402


class RecordingView:
    """PanelView that remembers what it was told to show (Qt widgets are not here)."""

    def __init__(self) -> None:
        self.running_states: list[bool] = []
        self.progress: list[tuple[str, int]] = []
        self.log: list[str] = []
        self.errors: list[str] = []
        self.results: list = []

    def set_running(self, running: bool) -> None:
        self.running_states.append(running)

    def set_progress(self, text: str, percent: int) -> None:
        self.progress.append((text, percent))

    def append_log(self, line: str) -> None:
        self.log.append(line)

    def show_error(self, message: str) -> None:
        self.errors.append(message)

    def show_results(self, results) -> None:
        self.results.append(results)

    def show_update(self, results, index: int) -> None:
        self.results.append((results, index))


@pytest.fixture
def scene():
    return slicer.vtkMRMLScene()


@pytest.fixture
def volume(scene):
    return add_oblique_volume(scene, np.zeros((4, 8, 8), np.int16))


def make_panel(python: str):
    view, history = RecordingView(), PromptHistory(Settings())
    return view, PanelController(view, ServerLogic(LocalServer(python=python)), history), history


def test_nothing_runs_without_a_volume_or_prompts(volume):
    view, panel, history = make_panel(sys.executable)
    panel.segment_or_cancel(None, Parameters(prompts=["kidney tumor"]), None)
    panel.segment_or_cancel(volume, Parameters(), None)
    assert view.errors == ["Choose an input volume.",
                           "Type what to look for, one prompt per line (for example: kidney tumor)."]
    assert view.running_states == [] and history.entries() == []


def test_the_button_cancels_a_running_segmentation(tmp_path, volume):
    view, panel, _ = make_panel(launcher(tmp_path, before=engine_blocked_on(tmp_path / "pipe.nii")))
    try:
        panel.segment_or_cancel(volume, Parameters(prompts=["glioma"]), None)
        assert view.running_states == [True]
        wait_for_children(panel.logic.server.runner.pid, 1)  # the engine is starting (and never gets there)
        panel.segment_or_cancel(volume, Parameters(prompts=["glioma"]), None)  # the same button, now Cancel
        panel.logic.wait(timeout=30)
        assert view.running_states == [True, False]
        assert view.errors == ["Cancelled."]
        assert ("Cancelling...", 0) in view.progress
        assert panel.logic.server.running  # the warm engine stays for the next run, until the panel closes
    finally:
        panel.logic.close()
    assert not panel.logic.server.running


def test_progress_stages_read_as_words():
    assert stage_label("inpaint") == "Inpainting a pseudo-healthy scan"
    assert stage_label("encode_latent") == "Encode latent"
    assert stage_label("inpaint-seed") == "Inpaint seed"


def test_the_status_after_a_run_gives_the_engines_warnings_and_missing_files():
    assert finished_status(LoadedResults(None, [], None)) == "Done."
    results = LoadedResults(None, [], None, warnings=["prompt 'x' does not look like a finding", "sheared input"],
                            missing=["uncertainty.nii.gz"])
    assert finished_status(results) == ("Done. Warnings: prompt 'x' does not look like a finding; sheared input. "
                                        "Not written by the engine: uncertainty.nii.gz")

