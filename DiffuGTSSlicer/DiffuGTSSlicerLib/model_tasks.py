"""Background ``diffugts weights`` commands for the Setup section: one at a time, in order, the model list
refreshed after every download or delete. Signals: listed(packages), failed(message), log(line)."""

from __future__ import annotations

from collections.abc import Callable

from . import models
from .command import engine_command
from .runner import ProcessResult, ProcessRunner
from .signals import Signal


class ModelTasks:
    def __init__(self, environment: Callable[[], dict[str, str]], python: str | None = None,
                 runner: ProcessRunner | None = None) -> None:
        self.environment = environment  # called per command: the models folder may have changed
        self.python = python
        self.runner = runner or ProcessRunner()
        self.listed = Signal()
        self.failed = Signal()
        self.log = self.runner.log
        self.packages: list[models.ModelPackage] = []
        self._queue: list[list[str]] = []
        self._current: list[str] = []
        self._lines: list[str] = []
        self.runner.log.connect(self._lines.append)
        self.runner.finished.connect(self._on_finished)

    @property
    def running(self) -> bool:
        return self.runner.running

    def refresh(self) -> None:
        self._enqueue([models.list_arguments()])

    def download(self, package: models.ModelPackage) -> None:
        """Download ``package``: call only after the person accepted models.download_consent_text(package)."""
        self._enqueue([models.download_arguments(package)])

    def delete(self, packages: list[models.ModelPackage]) -> None:
        self._enqueue([models.delete_arguments(p) for p in packages])

    def poll(self) -> bool:
        return self.runner.poll()

    def wait(self, timeout: float | None = None) -> None:
        """Run the whole queue to its end (scripts and tests)."""
        while self.running:
            self.runner.wait(timeout)

    def cancel(self) -> None:
        self._queue.clear()
        self.runner.cancel()

    def _enqueue(self, commands: list[list[str]]) -> None:
        running = self._current if self.runner.running else None
        self._queue += [c for c in commands if c not in self._queue and c != running]
        if not self.runner.running and self._queue:
            self._lines.clear()
            self._current = self._queue.pop(0)
            self.runner.start(engine_command(*self._current, python=self.python), env=self.environment())

    def _on_finished(self, result: ProcessResult) -> None:
        listing = self._current == models.list_arguments()
        if listing and result.succeeded:
            self.packages = models.parse_listing(self._lines)
            self.listed.emit(self.packages)
        elif not result.succeeded and not result.cancelled:
            self.failed.emit(result.error)
        self._enqueue([] if listing or result.cancelled else [models.list_arguments()])
