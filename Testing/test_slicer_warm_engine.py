"""The panel's warm engine (issue 18, item 3): one real local `diffugts serve`, started by the module as a separate
process with a random token, answers two prompts on one volume sent once; it is started again after it died;
with a Server URL the remote one is used and no local engine starts."""

from __future__ import annotations

import os

import numpy as np
import psutil
import pytest
from serve_support import TOKEN, running_server
from slicer_support import Recorder, add_oblique_volume, launcher, segment_mask, slicer_core

slicer = slicer_core()

from diffugts.client import Client  # noqa: E402
from diffugts.cli import build_parser  # noqa: E402
from diffugts.data.phantom import make_phantom  # noqa: E402
from DiffuGTSSlicerLib.engine_server import LocalServer, serve_arguments  # noqa: E402
from DiffuGTSSlicerLib.parameters import Parameters  # noqa: E402
from DiffuGTSSlicerLib.results import LoadedResults  # noqa: E402
from DiffuGTSSlicerLib.server_logic import ServerLogic, server_request  # noqa: E402


def phantom_volume(scene):
    array = make_phantom("kidney tumor", "CT", (24, 22, 14), seed=3).image.array.astype(np.int16)
    return add_oblique_volume(scene, array), array


def run(logic: ServerLogic, volume, prompt: str, **options) -> LoadedResults:
    seen = Recorder(logic)
    logic.start(volume, Parameters(prompts=[prompt], quality="fast", device="cpu", **options))
    logic.wait(timeout=600)
    (loaded,) = seen.results
    assert isinstance(loaded, LoadedResults), f"{loaded}\n" + "\n".join(seen.log)
    return loaded


def test_the_local_engine_is_a_loopback_serve_whose_token_never_reaches_the_command_line():
    parameters = Parameters(prompts=["x"], device="cpu", threads=2, backbone="maisi-rflow-v2",
                            heads="/m/heads.safetensors", refine="/m/refine.safetensors")
    arguments = serve_arguments(40123, parameters)
    args = build_parser().parse_args(arguments)
    assert (args.command, args.host, args.port, args.device, args.threads) == ("serve", "127.0.0.1", 40123, "cpu", 2)
    assert args.stop_with == os.getpid()  # a crash of Slicer does not leave it running
    assert (args.backbone, args.heads, args.refine, args.token_file) == (
        "maisi-rflow-v2", "/m/heads.safetensors", "/m/refine.safetensors", None)
    assert serve_arguments(1, Parameters(prompts=["x"]))[-2:] == ["--device", "auto"]  # demo: no model options


def test_a_job_request_is_what_the_server_reads():
    from diffugts.segment.job import SegmentRequest

    request = server_request(Parameters(prompts=["kidney tumor", "liver lesion"], quality="fast", modality="CT",
                                        load_heat_map=False))
    parsed = SegmentRequest.from_json(request)
    assert (parsed.prompts, parsed.quality, parsed.modality, parsed.outputs) == (
        ("kidney tumor", "liver lesion"), "fast", "CT", ("segmentation",))


@pytest.mark.slow
def test_two_prompts_start_the_engine_once_and_send_the_volume_once(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFUGTS_HOME", str(tmp_path / "home"))
    scene = slicer.vtkMRMLScene()
    volume, array = phantom_volume(scene)
    logic = ServerLogic(LocalServer(python=launcher(tmp_path)))
    log: list[str] = []
    logic.log.connect(log.append)
    try:
        first = run(logic, volume, "kidney tumor")
        second = run(logic, volume, "renal mass")
        server, client = logic.server, Client(logic.server.url, logic.server.token)
        jobs = [client.job(job_id) for job_id in logic.jobs]  # both jobs are known to the one server
        assert [job["state"] for job in jobs] == ["done", "done"]
        assert jobs[0]["volume"] == jobs[1]["volume"]  # the second job ran on the volume sent for the first
        assert (server.starts, logic.uploaded) == (1, 1)
        assert server.url.startswith("http://127.0.0.1:") and len(server.token) >= 32
        process = psutil.Process(server.runner.pid)
        command_line = " ".join(part for p in [process, *process.children(recursive=True)] for part in p.cmdline())
        assert "serve" in command_line and server.token not in command_line
        assert any("serving on http://127.0.0.1:" in line for line in log)  # the engine's own lines reach the log
        assert not any(server.token in line for line in log)
        for loaded in (first, second):
            mask = segment_mask(loaded.segmentation_node, loaded.rows[0].segment_id, volume)
            assert mask.shape == array.shape

        # the engine dies (a crash, a kill): the next prompt starts it again and sends the volume to it
        for child in process.children(recursive=True):
            child.kill()
        process.kill()
        third = run(logic, volume, "kidney tumor")
        assert (server.starts, logic.uploaded) == (2, 2) and third.rows[0].prompt == "kidney tumor"
        pid = server.runner.pid
    finally:
        logic.close()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@pytest.mark.slow
def test_with_a_server_url_the_remote_server_is_used_and_no_engine_starts(tmp_path, monkeypatch):
    from diffugts.segment import Segmenter

    monkeypatch.setenv("DIFFUGTS_HOME", str(tmp_path / "home"))
    scene = slicer.vtkMRMLScene()
    volume, _ = phantom_volume(scene)
    logic = ServerLogic(LocalServer(python=launcher(tmp_path)))
    with running_server(Segmenter.from_pretrained("demo-ct"), tmp_path / "work", token=TOKEN) as remote:
        for prompt in ("kidney tumor", "renal mass"):
            run(logic, volume, prompt, server_url=remote.url, server_token=TOKEN)
    assert (logic.server.starts, logic.uploaded) == (0, 1)


def test_a_server_url_runs_the_servers_own_models_so_a_chosen_model_is_refused_in_words():
    volume = add_oblique_volume(slicer.vtkMRMLScene(), np.zeros((4, 8, 8), np.int16))
    remote = Parameters(prompts=["liver tumor"], server_url="http://gpu-box:8765", backbone="maisi-rflow-v2")
    assert ServerLogic.problem(volume, remote).startswith("A server runs the models it was started with")
    assert ServerLogic.problem(volume, Parameters(prompts=["liver tumor"], backbone="maisi-rflow-v2")) is None
