"""The HTTP API (FastAPI): health, volume upload and delete, jobs with progress, cancel and result files.

Every answer that is not a file is JSON; every error is ``{"error": "one line"}``. Ids are made by the
server and checked against one pattern; files are served only by their name in the job's written set,
so no path is ever built from client text.
"""

from __future__ import annotations

import json
import shutil
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import DiffuGTSError
from ..segment.job import SegmentRequest
from .jobs import Job, JobQueue, QueueFull
from .security import authorized
from .upload import UPLOAD_FORMATS, TooLarge, format_mb, receive
from .volumes import Busy, VolumeStore, valid_id

MAX_JSON_BYTES = 64 * 1024


def create_app(segmenter, work_dir: Path, *, token: str | None = None, max_upload_bytes: int = 2048 * 2**20,
               max_volumes: int = 16, max_jobs: int = 64) -> FastAPI:
    """The API around a loaded Segmenter; ``work_dir`` (fresh, owned by the server) is removed at shutdown."""
    volumes = VolumeStore(work_dir / "volumes", max_volumes)
    jobs = JobQueue(segmenter, work_dir / "jobs", volumes, max_jobs)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        jobs.start()
        try:
            yield
        finally:
            jobs.stop()
            shutil.rmtree(work_dir, ignore_errors=True)

    def require_token(request: Request) -> None:
        if not authorized(request.headers.get("authorization"), token):
            raise HTTPException(401, "missing or wrong token", headers={"WWW-Authenticate": "Bearer"})

    app = FastAPI(title="DiffuGTS", version=__version__, lifespan=lifespan)
    api = APIRouter(dependencies=[Depends(require_token)])
    app.state.jobs = jobs

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "version": __version__}

    @api.post("/volumes", status_code=201)
    async def upload(request: Request, file_format: str = Query("nii.gz", alias="format")) -> dict:
        if file_format not in UPLOAD_FORMATS:
            raise HTTPException(400, f"unsupported format {file_format!r}; use one of {', '.join(UPLOAD_FORMATS)}")
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_upload_bytes:
            raise HTTPException(413, f"the upload is larger than this server's cap of {format_mb(max_upload_bytes)}")
        volume_id, path = volumes.new_path(UPLOAD_FORMATS[file_format])
        try:
            if await receive(request.stream(), path, max_upload_bytes) == 0:
                raise HTTPException(400, "the upload is empty")
            volume = await run_in_threadpool(read_upload, path)
            return volumes.add(volume_id, path, volume.size).public()
        except TooLarge as error:
            raise HTTPException(413, str(error)) from None
        except Busy as error:
            raise HTTPException(503, f"{error}; try again when a job has finished") from None
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
        except Busy as error:
            raise HTTPException(409, str(error)) from None
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
            raise HTTPException(503, f"{error}; try again later") from None

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
        written = finished_job(jobs, job_id).files
        if name not in written:
            raise HTTPException(404, "no such file in this job's results")
        return FileResponse(written[name], media_type="application/octet-stream")

    app.include_router(api)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, internal_error)
    return app


def read_upload(path: Path):
    """The uploaded volume read and checked like any input; a bad file is a 400 with the reader's one line."""
    from ..io import read_volume

    try:
        return read_volume(path, name_hint=False)  # a random id, not the user's name: no modality hint
    except DiffuGTSError as error:
        raise HTTPException(400, str(DiffuGTSError(error.problem, path="upload", hint=error.hint))) from None


async def read_json(request: Request) -> dict:
    """A small JSON object body (at most MAX_JSON_BYTES)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise HTTPException(413, f"the request body is larger than {MAX_JSON_BYTES // 1024} KB")
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



async def internal_error(_request: Request, error: Exception) -> JSONResponse:
    return JSONResponse({"error": f"internal error: {type(error).__name__}: {error}"}, status_code=500)
