"""Segment through a server: the panel's warm local engine (engine_server.LocalServer) or, with a Server URL, a
remote one. A volume already sent to that server is not sent again (the second prompt and every click skip the
upload); network work runs in a worker thread, and :meth:`ServerLogic.poll` (a GUI timer, or :meth:`wait`)
brings its events back to the calling thread, where the scene is changed."""

from __future__ import annotations

import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import vtk
from diffugts.client import CLEANUP_TIMEOUT_S, Client
from diffugts.errors import DiffuGTSError

from .command import model_arguments, wanted_outputs
from .engine_server import LocalServer
from .i18n import _
from .logic import INPUT_FILE, ORGAN_MASK_FILE, OUTPUT_FOLDER, SegmentationLogic, emit_results, failures_reported
from .parameters import Parameters
from .results import LoadedResults
from .results_update import update_prompt
from .scene_io import export_mask, export_volume
from .signals import Signal


@dataclass
class Update:
    """A correction of one prompt of loaded results (clicks, a box, an organ): its segment, heat map and table
    row change in place. ``points``/``boxes``: the job's click fields, RAS of the input volume's own frame."""

    results: LoadedResults
    index: int
    points: list[dict] = field(default_factory=list)
    boxes: list[dict] = field(default_factory=list)


@dataclass
class Plan:
    """One job: where to send it, what to upload (key -> file) and what to do with its results."""

    url: str
    token: str
    local: bool
    uploads: dict[str, tuple[tuple, Path]]  # role ("image", "organ_mask") -> (cache key, file)
    request: dict
    workspace: Path
    input_volume: Any
    parameters: Parameters
    segmentation_node: Any | None
    update: Update | None
    retried: bool = False


def server_request(parameters: Parameters, update: Update | None = None) -> dict:
    """The job JSON of diffugts/segment/job.py (SegmentRequest): the prompts, or the one prompt being corrected
    with its clicks."""
    prompts = [update.results.rows[update.index].prompt] if update else list(parameters.prompts)
    modality = None if parameters.modality == "auto" else parameters.modality
    request = {"prompts": prompts, "quality": parameters.quality, "seed": parameters.seed,
               "roi": parameters.roi or None, "modality": modality, "outputs": wanted_outputs(parameters)}
    if update and update.points:
        request["points"] = update.points
    if update and update.boxes:
        request["boxes"] = update.boxes
    if update and (update.points or update.boxes):
        request["coordinates"] = "RAS"
    return request


def volume_key(node: Any) -> tuple:
    """What identifies a volume's voxels and grid: another value means the server needs it again."""
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    grid = tuple(matrix.GetElement(r, c) for r in range(3) for c in range(4))
    image = node.GetImageData()
    return node.GetID(), image.GetMTime() if image is not None else 0, grid


def mask_key(node: Any, segment_id: str, reference: Any) -> tuple:
    """What identifies an organ mask as sent: the segment's (or node's) content and the grid it is put on."""
    if node.IsA("vtkMRMLSegmentationNode"):
        segmentation = node.GetSegmentation()
        segment = segmentation.GetSegment(segment_id) if segment_id else None
        content = segment.GetRepresentation("Binary labelmap").GetMTime() if segment else segmentation.GetMTime()
    else:
        content = node.GetImageData().GetMTime()
    return "organ", node.GetID(), segment_id, content, volume_key(reference)


class ServerLogic:
    """Signals: progress(stage, fraction), log(line), finished(LoadedResults), updated(LoadedResults, index),
    failed(message)."""

    def __init__(self, server: LocalServer | None = None, before_change: Callable[[Any], None] | None = None) -> None:
        self.server = server or LocalServer()
        self.before_change = before_change  # called with a segmentation node just before a click changes it
        self.progress = Signal()
        self.log = Signal()
        self.finished = Signal()
        self.updated = Signal()
        self.failed = Signal()
        self.server.log.connect(self.log.emit)
        self.plan: Plan | None = None
        self.uploads: dict[tuple, str] = {}  # (url, token, cache key) -> volume id on that server
        self.uploaded = 0  # files sent in this session (a cached volume is not sent again)
        self.jobs: list[str] = []  # the ids of the jobs sent, in order
        self._events: queue.Queue[tuple] = queue.Queue()
        self._cancel = threading.Event()
        self._job_id: str | None = None
        self._worker: threading.Thread | None = None

    @property
    def python(self) -> str | None:
        return self.server.python

    @python.setter
    def python(self, value: str | None) -> None:
        self.server.python = value

    @property
    def running(self) -> bool:
        return self.plan is not None

    @staticmethod
    def problem(input_volume: Any, parameters: Parameters) -> str | None:
        """Why a run cannot start, in words for the person, or None: the engine's reasons, and a model chosen
        here for a server that runs its own."""
        problem = SegmentationLogic.problem(input_volume, parameters)
        if problem:
            return problem
        if parameters.server_url and model_arguments(parameters):
            return _("A server runs the models it was started with: choose the demo model here, or clear the "
                     "Server URL to run {model} on this computer.").format(model=parameters.backbone or _("yours"))
        return None

    def start(self, input_volume: Any, parameters: Parameters, segmentation_node: Any | None = None,
              organ_mask: Any | None = None, organ_segment: str = "", update: Update | None = None) -> None:
        """Send the job (starting the local engine first if needed); results arrive through :meth:`poll`.
        ``organ_mask``: a segmentation (its ``organ_segment``, else all its segments) or labelmap node to keep
        findings in; ``update``: correct one prompt of loaded results in place instead of adding segments."""
        problem = self.problem(input_volume, parameters)
        if problem:
            raise ValueError(problem)
        if self.running:
            raise RuntimeError("a segmentation is already running")
        workspace = Path(tempfile.mkdtemp(prefix="diffugts-slicer-"))
        try:
            uploads = {"image": (volume_key(input_volume), workspace / INPUT_FILE)}
            export_volume(input_volume, uploads["image"][1])
            if organ_mask is not None:
                organ_file = export_mask(organ_mask, input_volume, workspace / ORGAN_MASK_FILE, organ_segment)
                uploads["organ_mask"] = (mask_key(organ_mask, organ_segment, input_volume), organ_file)
            local = not parameters.server_url
            url, token = self._endpoint(parameters)
        except Exception:
            shutil.rmtree(workspace, ignore_errors=True)
            raise
        self.plan = Plan(url, token, local, uploads, server_request(parameters, update), workspace, input_volume,
                         parameters, segmentation_node, update)
        self._send(self.plan)

    def _endpoint(self, parameters: Parameters) -> tuple[str, str]:
        if parameters.server_url:
            return parameters.server_url, parameters.server_token
        self.server.poll()  # notice a server that died since the last call: it is started again
        return self.server.ensure(parameters)

    def _send(self, plan: Plan) -> None:
        self._cancel.clear()
        self._job_id = None
        self._worker = threading.Thread(target=self._work, args=(plan,), daemon=True)
        self._worker.start()

    def _work(self, plan: Plan) -> None:
        """The network part, in a worker thread: its outcome goes to the queue as ('done',) or ('error', text)."""
        try:
            if plan.local:
                self.server.wait_ready(self._cancel)
            if self._cancel.is_set():
                raise DiffuGTSError(_("Cancelled."))
            client = Client(plan.url, plan.token)
            ids = {role: self._uploaded_id(client, plan, key, path) for role, (key, path) in plan.uploads.items()}
            try:
                job = client.submit(ids["image"], plan.request, ids.get("organ_mask"))
            except DiffuGTSError as error:
                if "no volume" not in str(error):
                    raise
                for key, _path in plan.uploads.values():  # the server dropped it (restart, or its --keep-volumes)
                    self.uploads.pop((plan.url, plan.token, key), None)
                ids = {role: self._uploaded_id(client, plan, key, path) for role, (key, path) in plan.uploads.items()}
                job = client.submit(ids["image"], plan.request, ids.get("organ_mask"))
            self._job_id = job["id"]
            self.jobs.append(job["id"])
            if self._cancel.is_set():
                self._cancel_job(plan)
            self._events.put(("log", _("Job {job} on {url}: {prompts}").format(
                job=job["id"][:8], url=plan.url, prompts=", ".join(plan.request["prompts"]))))
            client.wait(job["id"], self._progress)
            client.download(job["id"], plan.workspace / OUTPUT_FOLDER, self._progress)
            self._events.put(("done",))
        except DiffuGTSError as error:
            self._events.put(("error", str(error)))
        except Exception as error:  # noqa: BLE001 - whatever happens, the panel must leave its running state
            self._events.put(("error", f"{type(error).__name__}: {error}"))

    def _uploaded_id(self, client: Client, plan: Plan, key: tuple, path: Path) -> str:
        """The server's id for this file: the one it got earlier, else sent now."""
        cache_key = (plan.url, plan.token, key)
        if cache_key not in self.uploads:
            if self._cancel.is_set():
                raise DiffuGTSError(_("Cancelled."))
            self.uploads[cache_key] = client.upload(path, self._progress)
            self.uploaded += 1
        return self.uploads[cache_key]

    def _progress(self, stage: str, fraction: float) -> None:
        self._events.put(("progress", stage, fraction))

    def poll(self) -> bool:
        """Emit what happened since the last call (progress, log, results); True while a job is under way."""
        self.server.poll()
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            kind = event[0]
            if kind == "progress":
                self.progress.emit(event[1], event[2])
            elif kind == "log":
                self.log.emit(event[1])
            elif kind == "done":
                self._finish(None)
            else:
                self._finish(event[1])
        return self.running

    def run(self, input_volume: Any, parameters: Parameters, segmentation_node: Any | None = None,
            organ_mask: Any | None = None, organ_segment: str = "", timeout: float | None = None) -> LoadedResults:
        """:meth:`start` and :meth:`wait` in one blocking call (scripts): the loaded results, or RuntimeError with
        the engine's message (TimeoutError after ``timeout`` seconds, the job cancelled)."""
        outcome: list[Any] = []
        self.finished.connect(outcome.append)
        self.failed.connect(outcome.append)
        try:
            self.start(input_volume, parameters, segmentation_node, organ_mask, organ_segment)
            self.wait(timeout)
        finally:
            self.finished.disconnect(outcome.append)
            self.failed.disconnect(outcome.append)
        if not outcome or isinstance(outcome[0], str):
            raise RuntimeError(outcome[0] if outcome else _("The engine ended without results."))
        return outcome[0]

    def wait(self, timeout: float | None = None, interval: float = 0.05) -> None:
        """Poll until the job has ended (scripts and tests); on timeout, cancel and raise TimeoutError."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll():
            if deadline is not None and time.monotonic() > deadline:
                self.cancel()
                end = time.monotonic() + CLEANUP_TIMEOUT_S + 5.0
                while self.poll() and time.monotonic() < end:
                    time.sleep(interval)
                raise TimeoutError(f"the engine did not finish within {timeout} s")
            time.sleep(interval)

    def cancel(self) -> None:
        """Stop the job (on the server too) without blocking; ``failed('Cancelled.')`` follows."""
        if self.plan is not None and not self._cancel.is_set():
            self._cancel.set()
            if self._job_id is not None:
                threading.Thread(target=self._cancel_job, args=(self.plan,), daemon=True).start()

    def _cancel_job(self, plan: Plan) -> None:
        try:
            Client(plan.url, plan.token, timeout=CLEANUP_TIMEOUT_S, retry_s=0).cancel(self._job_id)
        except DiffuGTSError:
            pass  # the job ended or the server went: nothing left to stop

    def close(self) -> None:
        """Cancel the job under way, stop the local engine (module reload, Slicer's exit) and stop listening to it:
        the engine is the session's, and a later logic (a reloaded panel, a script) starts it again."""
        if self.running:
            self.cancel()
            try:
                self.wait(timeout=CLEANUP_TIMEOUT_S + 5.0)
            except TimeoutError:
                pass
        self.server.stop()
        self.server.log.disconnect(self.log.emit)

    def _finish(self, error: str | None) -> None:
        plan = self.plan
        if plan is None:
            return
        if error is not None and not self._cancel.is_set() and plan.local and not plan.retried and self.server.ended():
            plan.retried = True  # the local engine died under this job: start it again and send the job again
            self.log.emit(_("The engine stopped ({error}); starting it again.").format(
                error=self.server.error or error))
            try:
                plan.url, plan.token = self.server.ensure(plan.parameters)
                self._send(plan)
                return
            except (OSError, DiffuGTSError) as restart_error:
                error = str(restart_error)
        self.plan = None
        try:
            with failures_reported(self.failed):
                if self._cancel.is_set():
                    self.failed.emit(_("Cancelled."))
                elif error is not None:
                    self.failed.emit(error)
                elif plan.update is not None:
                    update_prompt(plan.workspace / OUTPUT_FOLDER, plan.update.results, plan.update.index,
                                  plan.input_volume, plan.parameters, self.before_change)
                    self.updated.emit(plan.update.results, plan.update.index)
                else:
                    emit_results(plan.workspace / OUTPUT_FOLDER, plan.input_volume, plan.parameters,
                                 plan.segmentation_node, self.log, self.finished)
        finally:
            if self.plan is None:
                shutil.rmtree(plan.workspace, ignore_errors=True)
