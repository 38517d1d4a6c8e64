"""The job queue: one worker thread runs every job on the one loaded Segmenter (models are not thread-safe),
with progress, cooperative cancellation and a folder of outputs per job.

A job is done once its segmentation, label map and report are written; its maps (probability, attention,
pseudo-healthy, uncertainty) are written when first downloaded, from the result kept in memory for the last
LAZY_JOBS jobs (an older job's maps are written out when it leaves that window), so a client waits only for
what it fetches."""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DiffuGTSError
from ..io.safe_write import atomic_output
from ..segment import job as segment_job
from ..segment.job import SegmentRequest
from ..segment.outputs import MAPS, output_files
from .volumes import VolumeStore, new_id

LOG = logging.getLogger("diffugts.serve")
FINISHED = ("done", "failed", "cancelled")
LAZY_JOBS = 2  # done jobs whose maps wait in memory for their first download


class JobCancelled(Exception):
    """Raised from the progress callback of a job whose cancellation was asked for."""


class QueueFull(Exception):
    """Every kept job is still queued or running."""


@dataclass
class Job:
    id: str
    request: SegmentRequest
    volume_ids: dict[str, str]  # "image" (and "organ_mask") -> stored volume id
    inputs: dict[str, Path]  # the same roles -> the pinned volume files
    folder: Path
    state: str = "queued"
    stage: str = "queued"
    fraction: float = 0.0
    error: str | None = None
    files: dict[str, Path] = field(default_factory=dict)  # name -> path: the only files ever served
    cancel: threading.Event = field(default_factory=threading.Event)
    downloads: int = 0  # files of this job being sent now: its folder stays until they end
    removed: bool = False  # dropped from the queue; the folder goes when the last download ends
    later: dict[str, Callable[[], Path]] = field(default_factory=dict)  # file name -> its writer, until written
    writing: threading.Lock = field(default_factory=threading.Lock)

    def public(self) -> dict:
        return {"id": self.id, "state": self.state, "stage": self.stage, "fraction": round(self.fraction, 4),
                "error": self.error, "volume": self.volume_ids["image"],
                "organ_mask": self.volume_ids.get("organ_mask"), "request": self.request.to_json(),
                "files": sorted(self.files)}

    def make(self, name: str) -> None:
        """Write the file ``name`` now if it was left for its first download (once, whoever asks first)."""
        with self.writing:
            writer = self.later.get(name)
            if writer is not None:
                writer()
                del self.later[name]


class JobQueue:
    """Jobs in submission order, at most ``capacity`` kept (the oldest finished ones are removed first)."""

    def __init__(self, segmenter, folder: Path, volumes: VolumeStore, capacity: int) -> None:
        self.segmenter = segmenter
        self.folder = folder
        self.volumes = volumes
        self.capacity = capacity
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._pending: queue.Queue[Job | None] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="diffugts-serve-worker", daemon=True)
        self._image: tuple[str, object] | None = None  # the last job's (volume id, volume): not read again
        folder.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        self._worker.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Cancel what is queued or running and wait for the worker to end."""
        with self._lock:
            ids = list(self._jobs)
        for job_id in ids:
            self.cancel(job_id)
        self._pending.put(None)
        if self._worker.is_alive():
            self._worker.join(timeout)

    def submit(self, request: SegmentRequest, volume_id: str, organ_mask_id: str | None = None) -> Job:
        """Queue a job on stored volumes (pinned until it ends); KeyError names an unknown volume id."""
        volume_ids = {"image": volume_id, **({"organ_mask": organ_mask_id} if organ_mask_id else {})}
        inputs: dict[str, Path] = {}
        try:
            for role, stored_id in volume_ids.items():
                inputs[role] = self.volumes.pin(stored_id)
        except KeyError:
            self._unpin({role: volume_ids[role] for role in inputs})
            raise
        job_id = new_id()
        job = Job(job_id, request, volume_ids, inputs, self.folder / job_id)
        with self._lock:
            finished = [j for j in self._jobs.values() if j.state in FINISHED]
            if len(self._jobs) >= self.capacity and not finished:
                self._unpin(volume_ids)
                raise QueueFull(f"all {self.capacity} kept jobs are queued or running")
            for old in finished[: max(0, len(self._jobs) + 1 - self.capacity)]:
                del self._jobs[old.id]
                old.removed = True
                old.later = {}  # its maps are not needed any more: free the result they hold
                if not old.downloads:
                    shutil.rmtree(old.folder, ignore_errors=True)
            self._jobs[job_id] = job
        self._pending.put(job)
        return job

    def get(self, job_id: str) -> Job:
        """The job; KeyError when there is none with this id (never was, or removed)."""
        with self._lock:
            return self._jobs[job_id]

    @contextmanager
    def download(self, job: Job, name: str) -> Iterator[Path]:
        """The path of one of the done job's files, kept on disk until the block ends even when the job is
        dropped meanwhile (a new job beyond capacity); KeyError when the job has no such file."""
        with self._lock:
            path = job.files[name]
            job.downloads += 1
        try:
            job.make(name)
            yield path
        finally:
            with self._lock:
                job.downloads -= 1
                gone = job.removed and not job.downloads
            if gone:
                shutil.rmtree(job.folder, ignore_errors=True)

    def cancel(self, job_id: str) -> Job:
        """Ask the job to stop: a queued job is dropped, a running one stops at its next progress report."""
        with self._lock:
            job = self._jobs[job_id]
            if job.state not in FINISHED:
                job.cancel.set()
                if job.state == "queued":
                    job.state, job.stage = "cancelled", "cancelled"
            return job

    def _work(self) -> None:
        while (job := self._pending.get()) is not None:
            with self._lock:
                start = job.state == "queued"
                if start:
                    job.state, job.stage = "running", "starting"
            if start:
                self._run(job)
            else:
                self._unpin(job.volume_ids)

    def _run(self, job: Job) -> None:
        def progress(stage: str, fraction: float) -> None:
            if job.cancel.is_set():
                raise JobCancelled
            job.stage, job.fraction = stage, fraction

        try:
            volume_id = job.volume_ids["image"]
            known = self._image[1] if self._image and self._image[0] == volume_id else None
            prepared = segment_job.prepare(job.inputs["image"], job.request, job.inputs.get("organ_mask"),
                                           name_hint=False, image=known)  # the stored name is a random id
            self._image = (volume_id, prepared.image)
            _, written, later = segment_job.run_deferred(self.segmenter, prepared, job.folder, progress=progress,
                                                         use="serve", later=MAPS)
            if job.cancel.is_set():
                raise JobCancelled
            publish_report(written["report"], job, self.folder.parent)
            names = output_files(len(job.request.prompts), job.request.outputs_or("serve"))
            job.later = {names[name]: writer for name, writer in later.items()}
            self._finish(job, "done", files={name: job.folder / name for name in names.values()})
        except JobCancelled:
            self._finish(job, "cancelled")
        except DiffuGTSError as error:
            self._finish(job, "failed", error=public_message(error, job))
        except Exception as error:  # noqa: BLE001 - a job's crash is its outcome; the server goes on
            LOG.exception("job %s failed", job.id)
            self._finish(job, "failed", error="internal error; the server's log has the details")
        finally:
            self._unpin(job.volume_ids)
        self._write_older_maps()

    def _write_older_maps(self) -> None:
        """Write out the maps still waiting of done jobs older than the last LAZY_JOBS, freeing their results."""
        with self._lock:
            waiting = [job for job in self._jobs.values() if job.later]
        for job in waiting[:-LAZY_JOBS]:
            try:
                for name in list(job.later):
                    job.make(name)
            except Exception:  # noqa: BLE001 - one job's maps failing to write must not stop the worker
                LOG.exception("the maps of job %s could not be written", job.id)
                job.later = {}

    def _finish(self, job: Job, state: str, *, files: dict[str, Path] | None = None, error: str | None = None) -> None:
        if state != "done":
            shutil.rmtree(job.folder, ignore_errors=True)  # partial outputs are removed, never served
        with self._lock:
            job.files, job.error = files or {}, error
            job.state, job.stage = state, state
            if state == "done":
                job.fraction = 1.0

    def _unpin(self, volume_ids: dict[str, str]) -> None:
        for stored_id in volume_ids.values():
            self.volumes.unpin(stored_id)


def publish_report(report: Path, job: Job, work_dir: Path) -> None:
    """report.json without the server's paths: those in its work folder relative to the job's folder (the
    image becomes ../../volumes/ID.nii.gz), any other absolute path (the models') by its file name."""
    def scrub(value):
        if isinstance(value, dict):
            return {key: scrub(item) for key, item in value.items()}
        if isinstance(value, list):
            return [scrub(item) for item in value]
        if isinstance(value, str):
            value = value.replace(str(work_dir), os.path.relpath(work_dir, job.folder))
            return Path(value).name if os.path.isabs(value) else value
        return value

    data = scrub(json.loads(report.read_text(encoding="utf-8")))
    with atomic_output(report) as temp:
        temp.write_text(json.dumps(data, indent=2), encoding="utf-8")


def public_message(error: DiffuGTSError, job: Job) -> str:
    """The error's one line with the server's file paths replaced by the volume ids the client knows."""
    names = {str(job.inputs[role]): f"volume {stored_id}" for role, stored_id in job.volume_ids.items()}
    path = names.get(error.path, Path(error.path).name if error.path else None)
    return str(DiffuGTSError(error.problem, path=path, hint=error.hint))
