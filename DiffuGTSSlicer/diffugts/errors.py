"""The one error type users see: what is wrong, with which file, and what to do about it."""

from __future__ import annotations

from pathlib import Path


class DiffuGTSError(Exception):
    """An expected failure with an actionable message; the CLI prints it without a traceback."""

    def __init__(self, problem: str, *, path: str | Path | None = None, hint: str | None = None) -> None:
        self.problem = problem.rstrip(".")
        self.path = None if path is None else str(path)
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.path}: {self.problem}." if self.path else f"{self.problem}."
        return f"{text} {self.hint}" if self.hint else text


class InputError(DiffuGTSError):
    """An input file (image, mask, manifest) that cannot be used as it is."""
