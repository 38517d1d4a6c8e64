"""The HTTP API (FastAPI): health, volume upload and delete, jobs with progress, cancel and result files.

Every answer that is not a file is JSON; every error is ``{"error": "one line"}``. Ids are made by the
server and checked against one pattern; files are served only by their name in the job's written set,
so no path is ever built from client text.
"""

from __future__ import annotations

import json
import logging
import shutil
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import DiffuGTSError
from ..memory import MemoryBusy, reserve
from ..segment.job import SegmentRequest
from .jobs import Job, JobQueue, QueueFull
from .security import LOOPBACK_NAMES, Guard
from ..units import format_bytes
from .upload import RETRY_AFTER_S, UPLOAD_FORMATS, Full, TooLarge, UploadGate, receive
from .volumes import Busy, VolumeStore, valid_id

LOG = logging.getLogger("diffugts.serve")
MAX_JSON_BYTES = 64 * 1024
RETRY = {"Retry-After": str(RETRY_AFTER_S)}
INTERNAL_ERROR = "internal error; the server's log has the details"


def create_app(segmenter, work_dir: Path, *, token: str | None = None, hosts: frozenset[str] | None = LOOPBACK_NAMES,
               max_upload_bytes: int = 2048 * 2**20, max_volumes: int = 16, max_jobs: int = 64, max_uploads: int = 2,
               keep_free_disk_bytes: int = 2**30) -> FastAPI:
    """The API around a loaded Segmenter; ``work_dir`` (fresh, owned by the server) is removed at shutdown.
    ``hosts``: the names a request's Host header may carry (None: any; see security.allowed_hosts)."""
    volumes = VolumeStore(work_dir / "volumes", max_volumes)
    jobs = JobQueue(segmenter, work_dir / "jobs", volumes, max_jobs)
    uploads = UploadGate(work_dir, max_uploads, keep_free_disk_bytes)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        jobs.start()
        try:
            yield
        finally:
            jobs.stop()
            shutil.rmtree(work_dir, ignore_errors=True)

    # no /docs or /redoc (they load scripts from a CDN, and a browser cannot send the token); /openapi.json,
    # like every route but /health, needs the token (security.Guard)
    app = FastAPI(title="DiffuGTS", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(Guard, token=token, hosts=hosts)
    api = APIRouter()
    app.state.jobs, app.state.uploads = jobs, uploads

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "version": __version__}

    @api.post("/volumes", status_code=201)
    async def upload(request: Request, file_format: str = Query("nii.gz", alias="format")) -> dict:
        if file_format not in UPLOAD_FORMATS:
            raise HTTPException(400, f"unsupported format {file_format!r}; use one of {', '.join(UPLOAD_FORMATS)}")
        length = request.headers.get("content-length")
        declared = int(length) if length and length.isdigit() else None
        if declared is not None and declared > max_upload_bytes:
            raise HTTPException(413, f"the upload is larger than this server's cap of {format_bytes(max_upload_bytes)}")
        volume_id, path = volumes.new_path(UPLOAD_FORMATS[file_format])
        try:
            with uploads.slot(max_upload_bytes if declared is None else declared):
                if await receive(request.stream(), path, max_upload_bytes) == 0:
                    raise HTTPException(400, "the upload is empty")
                volume = await run_in_threadpool(read_upload, path)
            return volumes.add(volume_id, path, volume.size).public()
        except TooLarge as error:
            raise HTTPException(413, str(error)) from None
        except Full as error:
            raise HTTPException(503, f"{error}; try again in {RETRY_AFTER_S} s", headers=RETRY) from None
        except Busy as error:
            raise HTTPException(503, f"{error}; try again when a job has finished", headers=RETRY) from None
        finally:
            if volume_id not in volumes:
                path.unlink(missing_ok=True)

    @api.delete("/volumes/{volume_id}")
    def delete_volume(volume_id: str) -> dict:
        check_id(volume_id, "volume")
        try:
            volumes.delete(volume_id)
        except KeyError:
            raise HTTPException(404, f"no volume {volume_id}") from None
        return {"deleted": volume_id}

    @api.post("/jobs", status_code=202)
    async def submit(request: Request) -> dict:
        body = await read_json(request)
        volume_id, organ_mask_id = body.pop("volume", None), body.pop("organ_mask", None)
        for value, what in ((volume_id, "volume"), (organ_mask_id, "organ_mask")):
            if value is not None and not (isinstance(value, str) and valid_id(value)):
                raise HTTPException(400, f"'{what}' must be a volume id from POST /volumes")
        if volume_id is None:
            raise HTTPException(400, "the job has no 'volume' (an id from POST /volumes)")
        try:
            segment_request = SegmentRequest.from_json(body)
            return jobs.submit(segment_request, volume_id, organ_mask_id).public()
        except DiffuGTSError as error:
            raise HTTPException(400, str(error)) from None
        except KeyError as error:
            raise HTTPException(404, f"no volume {error.args[0]}") from None
        except QueueFull as error:
            raise HTTPException(503, f"{error}; try again when a job has finished", headers=RETRY) from None

    @api.get("/jobs/{job_id}")
    def job_status(job_id: str) -> dict:
        return find_job(jobs, job_id).public()

    @api.delete("/jobs/{job_id}")
    def cancel(job_id: str) -> dict:
        find_job(jobs, job_id)
        return jobs.cancel(job_id).public()

    @api.get("/jobs/{job_id}/files")
    def files(job_id: str) -> dict:
        return {"files": sorted(finished_job(jobs, job_id).files)}

    @api.get("/jobs/{job_id}/files/{name}")
    def file(job_id: str, name: str) -> FileResponse:
        job = finished_job(jobs, job_id)
        if name not in job.files:
            raise HTTPException(404, "no such file in this job's results")
        return HeldFileResponse(jobs.download(job, name))

    app.include_router(api)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, internal_error)
    return app


class HeldFileResponse(FileResponse):
    """A job's file, sent while ``held`` (JobQueue.download) keeps its folder on disk, even if the client
    goes away mid-way."""

    def __init__(self, held) -> None:
        self.held = held
        super().__init__(held.__enter__(), media_type="application/octet-stream")

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.held.__exit__(None, None, None)


def read_upload(path: Path):
    """The uploaded volume read and checked like any input, with the memory its reading takes held while it
    reads (Full when uploads under way hold it); a bad file is a 400 with the reader's one line."""
    from ..io.read import read_bytes, read_volume

    try:
        with reserve(read_bytes(path)):
            return read_volume(path, name_hint=False)  # a random id, not the user's name: no modality hint
    except MemoryBusy as error:
        raise Full(str(error)) from None
    except DiffuGTSError as error:
        raise HTTPException(400, str(DiffuGTSError(error.problem, path="upload", hint=error.hint))) from None


async def read_json(request: Request) -> dict:
    """A small JSON object body (at most MAX_JSON_BYTES) sent as application/json: a web page can POST
    text/plain to any address without asking, but not application/json."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(415, "the request body must be sent with 'Content-Type: application/json'")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise HTTPException(413, f"the request body is larger than {format_bytes(MAX_JSON_BYTES)}")
    try:
        data = json.loads(body)
    except ValueError:
        raise HTTPException(400, "the request body is not JSON") from None
    if not isinstance(data, dict):
        raise HTTPException(400, "the request body must be a JSON object")
    return data


def check_id(text: str, what: str) -> None:
    if not valid_id(text):
        raise HTTPException(400, f"malformed {what} id: ids are 32 hex digits made by the server")


def find_job(jobs: JobQueue, job_id: str) -> Job:
    check_id(job_id, "job")
    try:
        return jobs.get(job_id)
    except KeyError:
        raise HTTPException(404, f"no job {job_id}") from None


def finished_job(jobs: JobQueue, job_id: str) -> Job:
    """The job, which must be done (its files complete)."""
    job = find_job(jobs, job_id)
    if job.state != "done":
        raise HTTPException(409, f"job {job_id} is {job.state}; files exist only once it is done")
    return job


async def http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
    return JSONResponse({"error": str(error.detail)}, status_code=error.status_code, headers=error.headers)


async def validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
    problems = "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg', '')}" for e in error.errors())
    return JSONResponse({"error": f"malformed request ({problems})"}, status_code=400)


async def internal_error(request: Request, error: Exception) -> JSONResponse:
    """A bug's details go to the server's log, never to the client (they can hold paths and internals)."""
    LOG.error("internal error on %s %s", request.method, request.url.path, exc_info=error)
    return JSONResponse({"error": INTERNAL_ERROR}, status_code=500)
