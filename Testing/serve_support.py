"""Helpers for the server tests: a real `diffugts serve` app under uvicorn in a thread, and raw HTTP requests."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

TOKEN = "test-token-0123456789abcdef"


@dataclass
class RunningServer:
    url: str
    port: int
    work_dir: Path
    app: object


@contextmanager
def running_server(segmenter, work_dir: Path, **options) -> Iterator[RunningServer]:
    """`create_app(...)` served by uvicorn on a free loopback port until the block ends (then shut down)."""
    import uvicorn

    from diffugts.serve import create_app

    app = create_app(segmenter, work_dir, **options)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", port, work_dir, app)
    finally:
        server.should_exit = True
        thread.join(60)


def raw(port: int, method: str, target: str, body=None, headers: dict[str, str] | None = None,
        token: str | None = TOKEN) -> tuple[int, bytes]:
    """(status, body) of one request sent exactly as given: the target is not normalized or quoted; a str body
    (JSON text) goes as application/json unless ``headers`` say otherwise."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = dict(headers or {})
    if isinstance(body, str):
        headers.setdefault("Content-Type", "application/json")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        connection.request(method, target, body=body, headers=headers)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered before reading the whole body
    response = connection.getresponse()
    try:
        return response.status, response.read()
    finally:
        connection.close()


def error_of(body: bytes) -> str:
    """The one-line message of an error answer (which must be JSON {"error": ...})."""
    message = json.loads(body)["error"]
    assert isinstance(message, str) and message and "\n" not in message
    return message
