"""Run an engine command as a separate process without blocking: progress parsed from its output, Cancel
kills the whole process tree (PythonSlicer is a launcher whose child is the real Python).

Nothing here blocks: reader threads queue the output lines and :meth:`ProcessRunner.poll`, called by a
timer on the GUI thread (or by :meth:`ProcessRunner.wait` in scripts and tests), emits the signals there.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO

from diffugts.progress import parse_progress_line

from .i18n import _
from .signals import Signal

ERROR_PREFIXES = ("diffugts: error: ", "diffugts: internal error: ")
TERMINATE_GRACE_S = 2.0
# A run on a server (--server) is given longer: stopped, it first cancels its job there and removes its uploads
# (diffugts/client.py: at most CLEANUP_TIMEOUT_S per request and for the job to stop), else both are orphaned
SERVER_TERMINATE_GRACE_S = 25.0
DRAIN_GRACE_S = 1.0  # after the process exits, how long to wait for output still held open by orphans


@dataclass
class ProcessResult:
    """How an engine process ended: exit code, whether it was cancelled, its error line and full log."""

    returncode: int | None
    cancelled: bool = False
    error: str = ""
    log: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0 and not self.cancelled


def error_message(returncode: int | None, log: Sequence[str]) -> str:
    """The engine's own one-line error when it printed one, else a plain sentence with the exit code."""
    for line in reversed(log):
        for prefix in ERROR_PREFIXES:
            if line.startswith(prefix):
                return line[len(prefix):].strip()
    return _("The engine stopped with exit code {code}; the log has the details.").format(code=returncode)


def signal_process_tree(process: subprocess.Popen, force: bool) -> None:
    """Ask the process and everything it started (its own process group) to stop; ``force`` kills them.
    On Windows the whole tree is always killed (console programs ignore a polite close)."""
    if sys.platform == "win32":
        if process.poll() is None:
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(process.pid)], capture_output=True, check=False)
        return
    try:
        os.killpg(process.pid, signal.SIGKILL if force else signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass


def group_alive(process: subprocess.Popen) -> bool:
    """True while any process of the runner-made process group is left (always False on Windows)."""
    if sys.platform == "win32":
        return False
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ProcessRunner:
    """Start one command at a time; signals: progress(stage, fraction), log(line), finished(ProcessResult)."""

    def __init__(self) -> None:
        self.progress = Signal()
        self.log = Signal()
        self.finished = Signal()
        self._process: subprocess.Popen | None = None
        self._lines: queue.Queue[str] = queue.Queue()
        self._readers: list[threading.Thread] = []
        self._log: list[str] = []
        self._cancelled = False
        self._exited_at: float | None = None
        self._kill_at: float | None = None  # after Cancel: when to force-kill what is left
        self._grace = TERMINATE_GRACE_S  # from Cancel to that

    @property
    def running(self) -> bool:
        return self._process is not None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, command: Sequence[str], env: dict[str, str] | None = None) -> None:
        """Start ``command`` in its own process group; a command that cannot start ends at once with an error."""
        if self.running:
            raise RuntimeError("a process is already running")
        self._log, self._cancelled, self._exited_at, self._kill_at = [], False, None, None
        self._grace = SERVER_TERMINATE_GRACE_S if "--server" in command else TERMINATE_GRACE_S
        group = ({"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if sys.platform == "win32"
                 else {"start_new_session": True})
        try:
            self._process = subprocess.Popen(
                list(command), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=env, text=True, encoding="utf-8", errors="replace", bufsize=1, **group)
        except OSError as error:
            message = _("Could not start the engine ({command}): {error}").format(command=command[0], error=error)
            self.log.emit(message)
            self.finished.emit(ProcessResult(None, error=message, log=[message]))
            return
        self._readers = [threading.Thread(target=self._read, args=(stream,), daemon=True)
                         for stream in (self._process.stdout, self._process.stderr)]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\r\n"))
        stream.close()

    def poll(self) -> bool:
        """Emit what the process printed since the last call; finish when it has exited. True while running."""
        if self._process is None:
            return False
        if self._kill_at is not None and time.monotonic() >= self._kill_at:
            signal_process_tree(self._process, force=True)
            self._kill_at = None
        exited = False
        if self._process.poll() is not None:
            self._exited_at = self._exited_at or time.monotonic()
            drained = not any(reader.is_alive() for reader in self._readers)
            exited = drained or time.monotonic() - self._exited_at > DRAIN_GRACE_S
            if self._kill_at is not None and group_alive(self._process):
                exited = False  # cancelled: wait until the rest of the tree is gone or force-killed
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
            parsed = parse_progress_line(line)
            if parsed:
                self.progress.emit(*parsed)
            else:
                self._log.append(line)
                self.log.emit(line)
        if exited:
            self._finish()
        return self.running

    def cancel(self) -> None:
        """Stop the process tree without blocking: terminate now, kill what is left TERMINATE_GRACE_S later
        (SERVER_TERMINATE_GRACE_S for a run on a server, which cancels its job there first; from :meth:`poll`);
        ``finished`` follows with ``cancelled`` set."""
        if self._process is not None and not self._cancelled:
            self._cancelled = True
            self._kill_at = time.monotonic() + self._grace
            signal_process_tree(self._process, force=False)

    def wait(self, timeout: float | None = None, interval: float = 0.05) -> None:
        """Poll until the process has finished (for scripts and tests); on timeout, cancel and raise."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll():
            if deadline is not None and time.monotonic() > deadline:
                self.cancel()
                end = time.monotonic() + self._grace + DRAIN_GRACE_S + 5.0  # poll force-kills in time
                while self.poll() and time.monotonic() < end:
                    time.sleep(interval)
                raise TimeoutError(f"the engine did not finish within {timeout} s")
            time.sleep(interval)

    def _finish(self) -> None:
        process, self._process = self._process, None
        returncode = process.returncode
        if self._cancelled:
            result = ProcessResult(returncode, cancelled=True, error=_("Cancelled."), log=self._log)
        elif returncode == 0:
            result = ProcessResult(0, log=self._log)
        else:
            result = ProcessResult(returncode, error=error_message(returncode, self._log), log=self._log)
        self.finished.emit(result)
