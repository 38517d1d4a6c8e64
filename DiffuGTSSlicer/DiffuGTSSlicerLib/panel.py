"""What the panel does, without Qt: the Widget implements :class:`PanelView` with Qt widgets and forwards
clicks here, so tests drive the whole behaviour with a recording view."""

from __future__ import annotations

from typing import Any, Protocol

from .i18n import _
from .server_logic import ServerLogic
from .parameters import Parameters
from .presets import PromptHistory
from .results import LoadedResults


class PanelView(Protocol):
    def set_running(self, running: bool) -> None:
        """Segment button becomes Cancel (and back); inputs are locked while running."""

    def set_progress(self, text: str, percent: int) -> None: ...

    def append_log(self, line: str) -> None: ...

    def show_error(self, message: str) -> None: ...

    def show_results(self, results: LoadedResults) -> None: ...

    def show_update(self, results: LoadedResults, index: int) -> None:
        """Row ``index`` of the results changed in place (a correction)."""


# What `diffugts segment` reports, in its order (diffugts/segment/pipeline.py; with a server, diffugts/client.py
# adds upload, queued and download); other stages read as their name.
STAGE_LABELS = {
    "upload": "Sending the scan to the server",
    "queued": "Waiting for the server",
    "encode": "Encoding the scan",
    "features": "Reading the scan's features",
    "reconstruct": "Reconstructing the scan",
    "inpaint": "Inpainting a pseudo-healthy scan",
    "decode": "Decoding the pseudo-healthy scan",
    "refine": "Refining the masks",
    "postprocess": "Cleaning up the masks",
    "download": "Receiving the results",
}


def stage_label(stage: str) -> str:
    """'inpaint' -> 'Inpainting a pseudo-healthy scan'; an unknown 'encode_latent' -> 'Encode latent'."""
    if stage in STAGE_LABELS:
        return _(STAGE_LABELS[stage])
    words = stage.replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:]


def finished_status(results: LoadedResults) -> str:
    """The status line after a run: done, the engine's warnings, and any file its report names but is missing."""
    parts = [_("Done.")]
    if results.warnings:
        parts.append(_("Warnings: {warnings}.").format(warnings="; ".join(w.rstrip(".") for w in results.warnings)))
    if results.missing:
        parts.append(_("Not written by the engine: {files}").format(files=", ".join(results.missing)))
    return " ".join(parts)


class PanelController:
    """Segment / Cancel, progress, log, errors and results for one panel."""

    def __init__(self, view: PanelView, logic: ServerLogic, history: PromptHistory) -> None:
        self.view = view
        self.logic = logic
        self.history = history
        logic.progress.connect(self._on_progress)
        logic.log.connect(view.append_log)
        logic.finished.connect(self._on_finished)
        logic.updated.connect(self._on_updated)
        logic.failed.connect(self._on_failed)

    def segment_or_cancel(self, input_volume: Any, parameters: Parameters, segmentation_node: Any | None,
                          organ: tuple[Any, str] = (None, "")) -> None:
        """The one button: starts a run (inside ``organ``: a node and segment id), or cancels the one in progress."""
        if self.logic.running:
            self.view.set_progress(_("Cancelling..."), 0)
            self.logic.cancel()
            return
        problem = self.logic.problem(input_volume, parameters)
        if problem:
            self.view.show_error(problem)
            return
        self.history.add(parameters.prompts)
        try:
            self.logic.start(input_volume, parameters, segmentation_node, organ_mask=organ[0], organ_segment=organ[1])
        except (OSError, ValueError, RuntimeError) as error:
            self.view.show_error(_("Could not start: {error}").format(error=error))
            return
        if self.logic.running:
            self.view.set_running(True)
            self.view.set_progress(_("Starting the engine..."), 0)

    def correction_started(self, prompt: str) -> None:
        """A click (or an organ change) sent a prompt again: the button cancels it, as it cancels a run."""
        self.view.set_running(True)
        self.view.set_progress(_("Correcting {prompt!r}...").format(prompt=prompt), 0)

    def _on_progress(self, stage: str, fraction: float) -> None:
        self.view.set_progress(stage_label(stage), round(100 * max(0.0, min(1.0, fraction))))

    def _on_finished(self, results: LoadedResults) -> None:
        self.view.set_running(False)
        self.view.set_progress(finished_status(results), 100)
        self.view.show_results(results)

    def _on_updated(self, results: LoadedResults, index: int) -> None:
        self.view.set_running(False)
        self.view.set_progress(_("Corrected {prompt!r}.").format(prompt=results.rows[index].prompt), 100)
        self.view.show_update(results, index)

    def _on_failed(self, message: str) -> None:
        self.view.set_running(False)
        self.view.set_progress(_("Stopped"), 0)
        self.view.show_error(message)
