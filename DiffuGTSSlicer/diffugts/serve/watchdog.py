"""Stop the server when the program that started it has ended (Slicer's warm engine: a crash of Slicer must not
leave a server holding the models' memory)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import psutil

from ..errors import DiffuGTSError

INTERVAL_S = 1.0


def watched_process(pid: int) -> psutil.Process:
    """The running process ``pid`` (its start time pins it: a later process given the same id is not it)."""
    try:
        return psutil.Process(pid)
    except (psutil.NoSuchProcess, ValueError):
        raise DiffuGTSError(f"--stop-with {pid}: no process {pid} is running",
                            hint="Give the id of a running process (Slicer passes its own).") from None


def stop_when_gone(process: psutil.Process, stop: Callable[[], None], interval: float = INTERVAL_S) -> threading.Thread:
    """Call ``stop`` once ``process`` has ended, checking every ``interval`` seconds from a daemon thread."""
    def watch() -> None:
        while alive(process):
            time.sleep(interval)
        stop()

    thread = threading.Thread(target=watch, name="diffugts-serve-watchdog", daemon=True)
    thread.start()
    return thread


def alive(process: psutil.Process) -> bool:
    """Running and not a zombie (a parent that crashed is a zombie until its own parent reaps it)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
