"""The process runner and the segmentation logic with REAL engine subprocesses: progress lines parsed, success,
the engine's own one-line error shown, Cancel killing the whole process tree, temporary files removed
(a whole `diffugts segment` run and its Cancel: test_slicer_end_to_end.py)."""

from __future__ import annotations

import sys
import time

import numpy as np
import psutil
import pytest
from slicer_support import (REPO_ROOT, Recorder, add_oblique_volume, engine_blocked_on, launcher, slicer_core,
                            wait_for_children)

from DiffuGTSSlicerLib.command import engine_command
from DiffuGTSSlicerLib.runner import ProcessRunner

DEMO = REPO_ROOT / "DiffuGTSSlicer" / "diffugts" / "demo" / "lung1_crop_ct.nii.gz"


def test_engine_success_output_is_logged():
    runner = ProcessRunner()
    seen = Recorder(runner)
    runner.start(engine_command("info", str(DEMO), "--json", python=sys.executable))
    runner.wait(timeout=60)
    (result,) = seen.results
    assert result.succeeded and result.returncode == 0
    assert any('"size": [160, 160, 30]' in line for line in seen.log)


def test_progress_lines_become_progress_signals_not_log_lines(tmp_path):
    script = ("from diffugts.progress import for_mode\n"
              "report = for_mode('json')\n"
              "for stage, fraction in [('encode', 0.25), ('encode', 1.0), ('inpaint', 0.5)]: report(stage, fraction)\n"
              "print('finished')\n")
    runner = ProcessRunner()
    seen = Recorder(runner)
    runner.start([launcher(tmp_path), "-c", script])
    runner.wait(timeout=60)
    assert seen.progress == [("encode", 0.25), ("encode", 1.0), ("inpaint", 0.5)]
    assert seen.log == ["finished"]
    assert seen.results[0].succeeded


def test_engine_error_line_becomes_the_message(tmp_path):
    runner = ProcessRunner()
    seen = Recorder(runner)
    runner.start(engine_command("info", str(tmp_path / "absent.nii.gz"), python=sys.executable))
    runner.wait(timeout=60)
    (result,) = seen.results
    assert result.returncode == 2 and not result.succeeded
    assert result.error.startswith(f"{tmp_path / 'absent.nii.gz'}: file or folder does not exist.")


def test_a_command_that_cannot_start_ends_with_a_clear_error(tmp_path):
    runner = ProcessRunner()
    seen = Recorder(runner)
    runner.start([str(tmp_path / "no-such-python"), "-m", "diffugts"])
    assert not runner.running
    assert "Could not start the engine" in seen.results[0].error


def test_cancel_kills_the_launcher_and_the_engine_it_started(tmp_path):
    fifo = tmp_path / "never-written.nii"
    runner = ProcessRunner()
    seen = Recorder(runner)
    runner.start([launcher(tmp_path, before=engine_blocked_on(fifo)), "-c", "print('never reached')"])
    launcher_process = psutil.Process(runner.pid)
    (engine,) = wait_for_children(runner.pid, 1)
    assert "diffugts" in " ".join(engine.cmdline())
    started = time.monotonic()
    runner.cancel()
    runner.wait(timeout=30)
    assert time.monotonic() - started < 10
    assert not engine.is_running() or engine.status() == psutil.STATUS_ZOMBIE
    assert not launcher_process.is_running()
    (result,) = seen.results
    assert result.cancelled and not result.succeeded and "never reached" not in seen.log


def test_cancel_never_blocks_and_force_kills_a_tree_that_ignores_terminate(tmp_path):
    fifo = tmp_path / "never-written.nii"
    runner = ProcessRunner()
    seen = Recorder(runner)
    ignore_terminate = "trap '' TERM\n"  # inherited by the engine: only SIGKILL stops this tree
    runner.start([launcher(tmp_path, before=ignore_terminate + engine_blocked_on(fifo)), "-c", "print(1)"])
    (engine,) = wait_for_children(runner.pid, 1)
    started = time.monotonic()
    runner.cancel()
    assert time.monotonic() - started < 0.5  # the GUI thread is never held
    time.sleep(0.5)
    assert runner.poll() and engine.is_running()  # still there: terminate was ignored
    runner.wait(timeout=30)
    assert not engine.is_running() or engine.status() == psutil.STATUS_ZOMBIE
    assert seen.results[0].cancelled


@pytest.fixture
def scene_and_volume():
    slicer = slicer_core()
    scene = slicer.vtkMRMLScene()
    return scene, add_oblique_volume(scene, np.zeros((4, 8, 8), np.int16))


def test_logic_cancel_kills_the_tree_and_removes_the_temporary_files(tmp_path, scene_and_volume):
    from DiffuGTSSlicerLib.logic import SegmentationLogic
    from DiffuGTSSlicerLib.parameters import Parameters

    _, volume = scene_and_volume
    logic = SegmentationLogic(python=launcher(tmp_path, before=engine_blocked_on(tmp_path / "pipe.nii")))
    seen = Recorder(logic)
    logic.start(volume, Parameters(prompts=["kidney tumor"]))
    workspace = logic.job.workspace
    assert (workspace / "input.nrrd").is_file()
    (engine,) = wait_for_children(logic.runner.pid, 1)
    logic.cancel()
    logic.wait(timeout=30)
    assert not workspace.exists()
    assert not engine.is_running() or engine.status() == psutil.STATUS_ZOMBIE
    assert seen.results == ["Cancelled."]
    assert not logic.running
