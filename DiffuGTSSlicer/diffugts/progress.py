"""Progress reporting: one callback type for the engine, rendered as a bar for people or JSON lines for programs.

Engine code calls ``progress(stage, fraction)``. ``diffugts --progress json ...`` prints each call to
stderr as a line ``DIFFUGTS_PROGRESS {"stage": ..., "fraction": ...}``, which the Slicer module and other
front ends parse with :func:`parse_progress_line`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TextIO

ProgressCallback = Callable[[str, float], None]
PROGRESS_PREFIX = "DIFFUGTS_PROGRESS "
MODES = ("bar", "json", "none")


def silent(stage: str, fraction: float) -> None:
    """A progress callback that reports nothing."""


def json_lines(stream: TextIO | None = None) -> ProgressCallback:
    """A callback printing machine-readable progress lines."""

    def report(stage: str, fraction: float) -> None:
        out = stream or sys.stderr
        out.write(PROGRESS_PREFIX + json.dumps({"stage": stage, "fraction": round(float(fraction), 4)}) + "\n")
        out.flush()

    return report


def bar(stream: TextIO | None = None) -> ProgressCallback:
    """A callback drawing one tqdm bar per stage."""
    from tqdm import tqdm

    state: dict[str, object] = {"stage": None, "bar": None}

    def report(stage: str, fraction: float) -> None:
        if state["stage"] != stage:
            if state["bar"] is not None:
                state["bar"].close()
            state["stage"] = stage
            state["bar"] = tqdm(total=100, desc=stage, unit="%", file=stream or sys.stderr, leave=True,
                                bar_format="{desc:<24} {bar} {n:.0f}% [{elapsed}<{remaining}]")
        progress_bar = state["bar"]
        progress_bar.n = min(100.0, max(0.0, 100.0 * fraction))
        progress_bar.refresh()
        if fraction >= 1.0:
            progress_bar.close()
            state["bar"], state["stage"] = None, None

    return report


def for_mode(mode: str) -> ProgressCallback:
    """The callback for a --progress mode: 'bar', 'json' or 'none'."""
    return {"bar": bar, "json": json_lines, "none": lambda: silent}[mode]()


def parse_progress_line(line: str) -> tuple[str, float] | None:
    """(stage, fraction) from a line printed in json mode, or None for any other line."""
    if not line.startswith(PROGRESS_PREFIX):
        return None
    try:
        payload = json.loads(line[len(PROGRESS_PREFIX):])
        return str(payload["stage"]), float(payload["fraction"])
    except (ValueError, KeyError, TypeError):
        return None
