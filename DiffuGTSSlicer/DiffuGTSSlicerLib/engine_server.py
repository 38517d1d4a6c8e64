"""The warm engine: one local ``diffugts serve`` on loopback with a random token, run by PythonSlicer as a separate
process (never in Slicer's own Python), reused for every prompt and click of the session (the panel's and scripts'
alike: :func:`session_server`), started again when it has died or the chosen models changed, and stopped when the
panel closes (module reload or Slicer's exit), when Python exits, or, should Slicer crash, by itself
(``--stop-with``)."""

from __future__ import annotations

import atexit
import os
import secrets
import socket
import threading
import time

from diffugts.client import Client
from diffugts.errors import DiffuGTSError

from .command import SERVER_TOKEN_VARIABLE, engine_command, engine_environment, model_arguments
from .i18n import _
from .parameters import Parameters
from .runner import ProcessResult, ProcessRunner
from .signals import Signal

HOST = "127.0.0.1"
READY_TIMEOUT_S = 600.0  # loading large models on a slow disk takes minutes
HEALTH_TIMEOUT_S = 2.0
STOP_TIMEOUT_S = 15.0


def free_port(host: str = HOST) -> int:
    """A port nobody listens on now (the server checks again and says so in one line if it was taken since)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def server_key(parameters: Parameters) -> tuple:
    """What a running server was started with: another value needs another server."""
    return (parameters.models_folder, parameters.device, parameters.threads, *model_arguments(parameters))


def serve_arguments(port: int, parameters: Parameters) -> list[str]:
    """``diffugts serve`` on loopback for the chosen models, device and threads, ending when this process (Slicer)
    ends, even by a crash."""
    arguments = ["serve", "--host", HOST, "--port", str(port), "--stop-with", str(os.getpid()),
                 "--device", parameters.device]
    if parameters.threads:
        arguments += ["--threads", str(parameters.threads)]
    return arguments + model_arguments(parameters)


class LocalServer:
    """Signals: log(line), stopped(message) when the process ended on its own ('' after :meth:`stop`)."""

    def __init__(self, python: str | None = None, runner: ProcessRunner | None = None) -> None:
        self.python = python
        self.runner = runner or ProcessRunner()
        self.log = self.runner.log
        self.stopped = Signal()
        self.url = ""
        self.token = ""
        self.key: tuple | None = None
        self.starts = 0  # processes started in this session
        self.error = ""  # why the last process ended, in the engine's words
        self._ended = threading.Event()  # set once the process has ended (read by the thread waiting for it)
        self._stopping = False
        self.runner.finished.connect(self._on_finished)

    @property
    def running(self) -> bool:
        return self.runner.running

    def ensure(self, parameters: Parameters) -> tuple[str, str]:
        """(url, token) of a server for these parameters: the running one, else one started now (it may still be
        loading its models: :meth:`wait_ready` waits for it)."""
        key = server_key(parameters)
        if self.running and key == self.key:
            return self.url, self.token
        if self.running:
            self.stop()
        port, self.token, self.key = free_port(), secrets.token_urlsafe(32), key
        self.url = f"http://{HOST}:{port}"
        environment = engine_environment(parameters)
        environment[SERVER_TOKEN_VARIABLE] = self.token  # a secret: in the environment, never on the command line
        command = engine_command(*serve_arguments(port, parameters), python=self.python)
        self._ended.clear()
        self.error, self._stopping = "", False
        self.starts += 1
        self.log.emit(_("Starting the engine: {command}").format(command=" ".join(command[1:])))
        self.runner.start(command, env=environment)
        return self.url, self.token

    def wait_ready(self, cancelled: threading.Event, timeout: float = READY_TIMEOUT_S) -> None:
        """Block (in a worker thread) until the server answers; DiffuGTSError with the engine's own words when
        its process ended first."""
        deadline = time.monotonic() + timeout
        client = Client(self.url, self.token, timeout=HEALTH_TIMEOUT_S, retry_s=0)
        while True:
            if self._ended.is_set():
                raise DiffuGTSError(_("the engine stopped while starting: {error}").format(
                    error=self.error.rstrip(".")))
            if cancelled.is_set():
                return
            try:
                client.health()
                return
            except DiffuGTSError:
                if time.monotonic() > deadline:
                    raise DiffuGTSError(_("the engine did not start within {seconds:.0f} s").format(
                        seconds=timeout), hint=_("The log shows how far it came.")) from None
                time.sleep(0.2)

    def ended(self) -> bool:
        """True once the process has ended (thread-safe)."""
        return self._ended.is_set()

    def poll(self) -> bool:
        return self.runner.poll()

    def stop(self) -> None:
        """Stop the server and wait for it (its work folder is removed at its shutdown)."""
        if self.running:
            self._stopping = True
            self.runner.cancel()
            try:
                self.runner.wait(timeout=STOP_TIMEOUT_S)
            except TimeoutError:
                pass

    def _on_finished(self, result: ProcessResult) -> None:
        self.error = "" if self._stopping else result.error
        self._ended.set()
        self.stopped.emit(self.error)


_session: LocalServer | None = None


def session_server() -> LocalServer:
    """The session's one warm engine, shared by the panel and by scripts (started at its first job; stopped at
    Python's exit if nothing stopped it before)."""
    global _session
    if _session is None:
        _session = LocalServer()
        atexit.register(_session.stop)
    return _session
