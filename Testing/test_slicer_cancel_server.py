"""Slicer's Cancel of a run on a server: the engine process cancels the server's job and removes its upload
before it is stopped, even when the server is slow to answer (once it had 2 s before SIGKILL, and both were
orphaned: the job went on occupying the server's one worker). The job stops at its next progress report and its
upload goes with it, which may be after the engine has exited (CI once checked at that instant)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from serve_support import TOKEN, running_server
from slicer_support import Recorder, add_oblique_volume, launcher, slicer_core

slicer = slicer_core()

from diffugts.data.phantom import make_phantom  # noqa: E402
from DiffuGTSSlicerLib.logic import SegmentationLogic  # noqa: E402
from DiffuGTSSlicerLib.parameters import Parameters  # noqa: E402
from DiffuGTSSlicerLib.runner import TERMINATE_GRACE_S  # noqa: E402

SLOW_ANSWER_S = TERMINATE_GRACE_S + 1.0  # the server takes this long to answer the cancel request


@pytest.mark.slow
def test_cancel_of_a_server_run_cancels_the_job_and_removes_the_upload_there(segmenter, tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFUGTS_HOME", str(tmp_path / "home"))
    scene = slicer.vtkMRMLScene()
    volume = add_oblique_volume(scene, make_phantom("kidney tumor", "CT", (48, 48, 32), seed=5).image.array
                                .astype(np.int16))
    with running_server(segmenter, tmp_path / "work", token=TOKEN) as server:
        queue = server.app.state.jobs
        cancel = queue.cancel

        def slow_cancel(job_id):  # takes effect at once, answers late
            job = cancel(job_id)
            time.sleep(SLOW_ANSWER_S)
            return job

        monkeypatch.setattr(queue, "cancel", slow_cancel)
        logic = SegmentationLogic(python=launcher(tmp_path))
        seen = Recorder(logic)
        logic.start(volume, Parameters(prompts=["kidney tumor"], quality="best", device="cpu",
                                       server_url=server.url, server_token=TOKEN))
        deadline = time.monotonic() + 120
        while not queue._jobs or next(iter(queue._jobs.values())).state != "running":
            assert logic.poll() and time.monotonic() < deadline, "\n".join(seen.log)
            time.sleep(0.05)
        (job,) = queue._jobs.values()
        logic.cancel()
        logic.wait(timeout=60)
        assert seen.results == ["Cancelled."]
        stop = time.monotonic() + 60  # the job stops at its next progress report, maybe after the engine has gone
        while job.state == "running" and time.monotonic() < stop:
            time.sleep(0.05)
        assert job.state == "cancelled" and not job.folder.exists()
        assert not list((server.work_dir / "volumes").iterdir())  # the upload went too
