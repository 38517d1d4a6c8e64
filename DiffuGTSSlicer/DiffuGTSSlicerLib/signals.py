"""A tiny Qt-free signal, so logic and runner emit events that tests observe without an application."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Signal:
    """connect / disconnect / emit; slots run in connection order, in the emitting thread."""

    def __init__(self) -> None:
        self._slots: list[Callable[..., Any]] = []

    def connect(self, slot: Callable[..., Any]) -> None:
        if slot not in self._slots:
            self._slots.append(slot)

    def disconnect(self, slot: Callable[..., Any] | None = None) -> None:
        """Remove ``slot``, or every slot when none is given."""
        if slot is None:
            self._slots.clear()
        elif slot in self._slots:
            self._slots.remove(slot)

    def emit(self, *args: Any) -> None:
        for slot in list(self._slots):
            slot(*args)
