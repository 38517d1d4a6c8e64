"""A client for ``diffugts serve``, standard library only (Slicer's Python may lack httpx and requests).

    client = Client("http://127.0.0.1:8765", token=os.environ.get(TOKEN_VARIABLE))
    job, written = segment(client, "ct.nii.gz", {"prompts": ["kidney tumor"]}, "out/", progress=print)

Every failure is a one-line DiffuGTSError: an unreachable server, a refused token, an upload over the
server's cap, a job that failed there. Interrupting ``segment`` (Ctrl+C, SIGTERM) cancels the server's job.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

from .errors import DiffuGTSError
from .progress import ProgressCallback, silent

TOKEN_VARIABLE = "DIFFUGTS_TOKEN"
UPLOAD_FORMATS = {".nii.gz": "nii.gz", ".nii": "nii", ".nrrd": "nrrd", ".mha": "mha"}  # suffix -> ?format=
REPORT = "report.json"
CHUNK = 1 << 20
POLL_S = (0.05, 0.2)  # first and longest wait between two status requests (the longest is lost time at the end)
CLEANUP_TIMEOUT_S = 5.0  # each request when an interrupted run cleans up
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class Client:
    """One ``diffugts serve`` at ``url`` (http or https), with its bearer token if it needs one."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0, retry_s: float = 600.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DiffuGTSError(f"the server URL {url!r} is not an http:// or https:// address",
                                hint="Give it as http://HOST:PORT, e.g. http://127.0.0.1:8765.")
        self.url = url.rstrip("/")
        self._parts = parts
        self._token = token
        self.timeout = timeout
        self.retry_s = retry_s

    def health(self) -> dict:
        return self._json("GET", "/health")

    def upload(self, path: str | Path, progress: ProgressCallback = silent) -> str:
        """Send one image file (.nii.gz, .nii, .nrrd, .mha) and return the server's id for it."""
        path = Path(path)
        file_format = next((f for suffix, f in UPLOAD_FORMATS.items() if path.name.lower().endswith(suffix)), None)
        if file_format is None:
            raise DiffuGTSError("the server takes single .nii.gz, .nii, .nrrd or .mha files", path=path,
                                hint="Convert it first (for example with 3D Slicer's Save dialog).")
        try:
            size = path.stat().st_size
        except OSError as error:
            raise DiffuGTSError(f"cannot read it ({error.strerror})", path=path) from None

        def chunks() -> Iterator[bytes]:
            sent = 0
            with path.open("rb") as file:
                while chunk := file.read(CHUNK):
                    sent += len(chunk)
                    progress("upload", sent / max(size, 1))
                    yield chunk

        headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
        return self._json("POST", f"/volumes?format={quote(file_format)}", chunks, headers)["id"]

    def delete_volume(self, volume_id: str) -> None:
        self._json("DELETE", f"/volumes/{quote(volume_id)}")

    def submit(self, volume_id: str, request: dict, organ_mask_id: str | None = None) -> dict:
        """Queue a job: ``request`` holds the SegmentRequest fields (prompts, quality, seed, roi, ...)."""
        body = json.dumps({**request, "volume": volume_id, "organ_mask": organ_mask_id}).encode()
        return self._json("POST", "/jobs", body, {"Content-Type": "application/json"})

    def job(self, job_id: str) -> dict:
        return self._json("GET", f"/jobs/{quote(job_id)}")

    def cancel(self, job_id: str) -> dict:
        return self._json("DELETE", f"/jobs/{quote(job_id)}")

    def wait(self, job_id: str, progress: ProgressCallback = silent) -> dict:
        """Follow the job until it is done, reporting its stages; a failed or cancelled job is an error."""
        pause, last = POLL_S[0], None
        while True:
            job = self.job(job_id)
            if (job["stage"], job["fraction"]) != last:
                last = (job["stage"], job["fraction"])
                if job["state"] in ("queued", "running"):
                    progress(job["stage"], job["fraction"])
            if job["state"] == "done":
                return job
            if job["state"] == "failed":
                raise DiffuGTSError(f"the server's job failed: {job['error']}")
            if job["state"] == "cancelled":
                raise DiffuGTSError("the job was cancelled on the server")
            time.sleep(pause)
            pause = min(POLL_S[1], pause * 1.5)

    def download(self, job_id: str, out: str | Path, progress: ProgressCallback = silent) -> dict[str, Path]:
        """Every result file of a done job into ``out`` (each written to a temp name and renamed; report.json
        last, so its presence means the folder is complete); returns name -> path."""
        names = self._json("GET", f"/jobs/{quote(job_id)}/files")["files"]
        unsafe = [name for name in names if not _SAFE_NAME.match(name)]
        if unsafe:
            raise DiffuGTSError(f"the server sent unsafe file names {unsafe}; nothing was written")
        names = sorted(names, key=lambda name: name == REPORT)
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        written: dict[str, Path] = {}
        for number, name in enumerate(names, start=1):
            with self._send("GET", f"/jobs/{quote(job_id)}/files/{quote(name)}") as response:
                written[name] = _write_atomic(out / name, _read_chunks(response))
            progress("download", number / len(names))
        return written

    def _json(self, method: str, path: str, body=None, headers: dict[str, str] | None = None) -> dict:
        """The JSON answer; ``body`` may be a function making the body (an upload's chunks), so that a request
        the server turns away for now (503 with Retry-After: uploads under way, a full queue) is sent again
        after the wait it asks for, for up to ``retry_s`` seconds in all."""
        deadline = time.monotonic() + self.retry_s
        while True:
            try:
                with self._send(method, path, body() if callable(body) else body, headers) as response:
                    return json.loads(response.read())
            except ValueError:
                raise DiffuGTSError(f"the server at {self.url} did not answer in JSON",
                                    hint="Check that the URL points to 'diffugts serve'.") from None
            except _Later as later:
                if time.monotonic() + later.seconds > deadline:
                    raise later.error from None
                time.sleep(later.seconds)

    def _send(self, method: str, path: str, body=None, headers: dict[str, str] | None = None):
        """The response to one request (status 2xx), or the server's refusal as a one-line error."""
        kind = http.client.HTTPSConnection if self._parts.scheme == "https" else http.client.HTTPConnection
        connection = kind(self._parts.hostname, self._parts.port, timeout=self.timeout)
        headers = {**(headers or {}), "Connection": "close"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        cut_short = False
        try:
            try:
                connection.request(method, self._parts.path.rstrip("/") + path, body=body, headers=headers)
            except (BrokenPipeError, ConnectionResetError):
                cut_short = True  # the server answered before reading the whole body (its size cap): read that
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as error:
            if cut_short:
                raise DiffuGTSError(f"the server at {self.url} closed the connection during the upload",
                                    hint="Its --max-upload-mb may be smaller than this file.") from None
            raise DiffuGTSError(f"cannot reach the server at {self.url} ({_reason(error)})",
                                hint="Check the URL and that 'diffugts serve' runs there (or its SSH tunnel is "
                                     "open).") from None
        if response.status >= 300:
            refusal = self._refusal(response)
            retry_after = response.getheader("Retry-After", "")
            if response.status == 503 and retry_after.isdigit():
                raise _Later(refusal, min(int(retry_after), 30))
            raise refusal
        return response

    def _refusal(self, response: http.client.HTTPResponse) -> DiffuGTSError:
        try:
            message = str(json.loads(response.read())["error"])
        except (ValueError, KeyError, TypeError, OSError, http.client.HTTPException):
            message = f"HTTP {response.status} {response.reason}"
        if response.status == 401:
            return DiffuGTSError(f"the server at {self.url} refused the request ({message})",
                                 hint=f"Set {TOKEN_VARIABLE} (or --token-file) to the server's token.")
        if response.status == 413:
            return DiffuGTSError(f"the server refused the upload: {message}",
                                 hint="Crop the volume or ask for a larger --max-upload-mb on the server.")
        return DiffuGTSError(f"the server answered {response.status}: {message}")


class _Later(DiffuGTSError):
    """The server asked for the request again after ``seconds`` (503 with Retry-After)."""

    def __init__(self, error: DiffuGTSError, seconds: int) -> None:
        super().__init__(error.problem, hint=error.hint)
        self.error, self.seconds = error, seconds


def segment(client: Client, image: str | Path, request: dict, out: str | Path, *,
            organ_mask: str | Path | None = None, progress: ProgressCallback = silent) -> tuple[dict, dict[str, Path]]:
    """Upload, segment on the server, download every output into ``out``; the uploads are deleted after.
    report.json names the local image (as a local run's does) and the server and job it ran on.
    An interrupt (KeyboardInterrupt) cancels the server's job before it propagates."""
    uploaded: list[str] = []
    job_id = None
    cleanup = client
    try:
        uploaded.append(client.upload(image, progress))
        if organ_mask is not None:
            uploaded.append(client.upload(organ_mask, progress))
        job_id = client.submit(uploaded[0], request, uploaded[1] if organ_mask is not None else None)["id"]
        job = client.wait(job_id, progress)
        written = client.download(job_id, out, progress)
    except KeyboardInterrupt:  # being stopped (Ctrl+C, Slicer's Cancel): short requests, within the grace given
        cleanup = Client(client.url, client._token, timeout=CLEANUP_TIMEOUT_S, retry_s=0)
        if job_id is not None:
            _quietly(cleanup.cancel, job_id)  # the job stops at its next progress report; its upload goes then
        raise
    finally:
        for volume_id in uploaded:
            _quietly(cleanup.delete_volume, volume_id)
    report = json.loads(written[REPORT].read_text(encoding="utf-8"))
    report.update(image=str(Path(image).resolve()), server={"url": client.url, "job": job_id})
    _write_atomic(written[REPORT], [json.dumps(report, indent=2).encode()])
    return job, written


def _quietly(call, *args) -> None:
    """Best-effort cleanup on the server: a failure here must not hide the error that led to it."""
    try:
        call(*args)
    except DiffuGTSError:
        pass


def _read_chunks(response: http.client.HTTPResponse) -> Iterator[bytes]:
    while chunk := response.read(CHUNK):
        yield chunk


def _write_atomic(target: Path, chunks) -> Path:
    """Write the chunks to a temp file beside ``target`` and rename it over; nothing half-written remains."""
    handle, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            for chunk in chunks:
                file.write(chunk)
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    finally:
        Path(temp).unlink(missing_ok=True)
    return target


def _reason(error: BaseException) -> str:
    return getattr(error, "strerror", None) or str(error) or type(error).__name__
