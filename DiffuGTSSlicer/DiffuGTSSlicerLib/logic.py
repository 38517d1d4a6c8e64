"""One segmentation run: export the input, run ``diffugts segment`` in a separate process, load the results,
and always remove the temporary files (success, failure or Cancel)."""

from __future__ import annotations

import shlex
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .command import engine_command, engine_environment, segment_arguments
from .dependencies import python_problem
from .i18n import _
from .parameters import Parameters
from .results import ResultsError, load_results
from .runner import ProcessResult, ProcessRunner
from .scene_io import export_mask, export_volume
from .signals import Signal

INPUT_FILE = "input.nrrd"
ORGAN_MASK_FILE = "organ_mask.nrrd"
OUTPUT_FOLDER = "out"


@dataclass
class Job:
    workspace: Path
    input_volume: Any
    parameters: Parameters
    segmentation_node: Any | None


class SegmentationLogic:
    """Signals: progress(stage, fraction), log(line), finished(LoadedResults), failed(message)."""

    def __init__(self, runner: ProcessRunner | None = None, python: str | None = None) -> None:
        self.runner = runner or ProcessRunner()
        self.python = python
        self.progress = self.runner.progress
        self.log = self.runner.log
        self.finished = Signal()
        self.failed = Signal()
        self.job: Job | None = None
        self.runner.finished.connect(self._on_finished)

    @property
    def running(self) -> bool:
        return self.job is not None

    @staticmethod
    def problem(input_volume: Any, parameters: Parameters) -> str | None:
        """Why a run cannot start, in words for the person, or None."""
        python = python_problem(server_url=parameters.server_url)
        if python:
            return python
        if input_volume is None or input_volume.GetImageData() is None:
            return _("Choose an input volume.")
        if not parameters.prompts:
            return _("Type what to look for, one prompt per line (for example: kidney tumor).")
        return None

    def start(self, input_volume: Any, parameters: Parameters, segmentation_node: Any | None = None,
              organ_mask: Any | None = None) -> None:
        """Start the engine in the background; call :meth:`poll` from a timer (or :meth:`wait`) until it ends.
        ``organ_mask`` (a segmentation or labelmap node) keeps findings inside it."""
        problem = self.problem(input_volume, parameters)
        if problem:
            raise ValueError(problem)
        if self.running:
            raise RuntimeError("a segmentation is already running")
        workspace = Path(tempfile.mkdtemp(prefix="diffugts-slicer-"))
        try:
            image = export_volume(input_volume, workspace / INPUT_FILE)
            organ = export_mask(organ_mask, input_volume, workspace / ORGAN_MASK_FILE) if organ_mask else None
            command = engine_command(*segment_arguments(image, workspace / OUTPUT_FOLDER, parameters, organ),
                                     python=self.python)
        except Exception:
            shutil.rmtree(workspace, ignore_errors=True)
            raise
        self.job = Job(workspace, input_volume, parameters, segmentation_node)
        self.log.emit("$ " + shlex.join(command))
        self.runner.start(command, env=engine_environment(parameters))

    def poll(self) -> bool:
        return self.runner.poll()

    def wait(self, timeout: float | None = None) -> None:
        self.runner.wait(timeout)

    def cancel(self) -> None:
        self.runner.cancel()

    def _on_finished(self, result: ProcessResult) -> None:
        job, self.job = self.job, None
        if job is None:
            return
        try:
            with failures_reported(self.failed):
                if not result.succeeded:
                    self.failed.emit(result.error)
                    return
                emit_results(job.workspace / OUTPUT_FOLDER, job.input_volume, job.parameters, job.segmentation_node,
                             self.log, self.finished)
        finally:
            shutil.rmtree(job.workspace, ignore_errors=True)


@contextmanager
def failures_reported(failed: Signal) -> Iterator[None]:
    """Whatever goes wrong while results are read reaches ``failed`` in words: the panel must leave its running
    state whatever happens."""
    try:
        yield
    except (ResultsError, OSError) as error:
        failed.emit(str(error))
    except Exception as error:  # noqa: BLE001 - see the docstring
        failed.emit(_("Could not load the results: {error}").format(error=f"{type(error).__name__}: {error}"))


def emit_results(folder: Path, input_volume: Any, parameters: Parameters, segmentation_node: Any | None,
                 log: Signal, finished: Signal) -> None:
    """Load the engine's outputs into the scene, name any it did not write on ``log``, and emit ``finished``."""
    loaded = load_results(folder, input_volume, parameters, segmentation_node)
    if loaded.missing:
        log.emit(_("The engine did not write: {files}").format(files=", ".join(loaded.missing)))
    finished.emit(loaded)
