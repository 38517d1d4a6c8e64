"""`diffugts serve` against hostile clients, over real HTTP on loopback: a decompression bomb within the cap,
20 uploads at the cap at once, a web page's cross-origin text/plain POST and a DNS-rebinding Host header,
/openapi.json without the token, internals in errors and reports, and a download racing the job's removal."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from serve_support import TOKEN, error_of, raw, running_server

from diffugts import memory
from diffugts.client import Client
from diffugts.data.phantom import make_phantom
from diffugts.errors import DiffuGTSError
from diffugts.io import write_volume

CAP = 2**20  # 1 MB
MAX_UPLOADS = 2
FAST = {"prompts": ["kidney tumor"], "quality": "fast"}


@pytest.fixture(scope="module")
def server(segmenter, tmp_path_factory):
    work = tmp_path_factory.mktemp("hostile") / "work"
    with running_server(segmenter, work, token=TOKEN, max_upload_bytes=CAP, max_uploads=MAX_UPLOADS,
                        max_jobs=2) as running:
        yield running


@pytest.fixture(scope="module")
def open_server(segmenter, tmp_path_factory):
    """A server started without a token (as create_app allows from Python): only the Host and JSON checks guard it."""
    with running_server(segmenter, tmp_path_factory.mktemp("open") / "work", token=None) as running:
        yield running


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    image = make_phantom("kidney tumor", "CT", (20, 20, 12), seed=1).image
    return write_volume(image, tmp_path_factory.mktemp("small") / "small.nii.gz")


def stored(server) -> set[str]:
    return {path.name for path in (server.work_dir / "volumes").iterdir()}


def cap_sized_nifti(folder: Path) -> Path:
    """An uncompressed int16 NIfTI just under the 1 MB cap (100x100x52 voxels)."""
    array = np.random.default_rng(0).integers(-1000, 1000, (52, 100, 100)).astype(np.int16)
    path = folder / "cap.nii"
    sitk.WriteImage(sitk.GetImageFromArray(array), str(path))
    assert CAP - 10_000 < path.stat().st_size <= CAP
    return path


def test_a_gzip_bomb_within_the_cap_costs_no_more_than_its_header_says(server, tmp_path):
    """4x5x6 voxels, then 512 MB of zeros in further gzip members: 0.5 MB on the wire."""
    plain = tmp_path / "small.nii"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((6, 5, 4), np.int16)), str(plain))
    zeros = gzip.compress(bytes(1 << 24), compresslevel=9)
    bomb = gzip.compress(plain.read_bytes()) + zeros * 32
    assert len(bomb) < CAP
    started = time.perf_counter()
    assert len(zlib.decompressobj(wbits=31).decompress(zeros)) == 1 << 24  # one member; the server would do 32
    inflate_s = (time.perf_counter() - started) * 32
    started = time.perf_counter()
    status, answer = raw(server.port, "POST", "/volumes?format=nii.gz", bomb)
    upload_s = time.perf_counter() - started
    assert status == 201 and json.loads(answer)["size"] == [4, 5, 6]
    assert upload_s < inflate_s / 2, (upload_s, inflate_s)


def test_twenty_uploads_at_the_cap_at_once_get_places_or_503_with_retry_after(server, tmp_path):
    body = cap_sized_nifti(tmp_path).read_bytes()
    all_sent_half = threading.Barrier(20)
    before = stored(server)

    def chunks():
        yield body[: len(body) // 2]
        all_sent_half.wait(60)
        time.sleep(1.0)  # the server meanwhile answers every request that found no place
        yield body[len(body) // 2:]

    def one(_):
        return raw(server.port, "POST", "/volumes?format=nii", chunks(), {"Content-Length": str(len(body))})

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(one, range(20)))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] * MAX_UPLOADS + [503] * (20 - MAX_UPLOADS), statuses
    for status, answer in answers:
        if status == 503:
            assert error_of(answer) == f"{MAX_UPLOADS} uploads are being received already; try again in 2 s"
    assert len(stored(server) - before) == MAX_UPLOADS  # nothing left of the refused ones
    # the standard client waits as told and gets its place
    ids = list(ThreadPoolExecutor(max_workers=6).map(lambda _: Client(server.url, TOKEN).upload(tmp_path / "cap.nii"),
                                                     range(6)))
    assert len(set(ids)) == 6


def test_an_upload_is_503_while_the_disk_or_memory_it_needs_is_held(server, small, monkeypatch):
    before = stored(server)
    gate = server.app.state.uploads
    monkeypatch.setattr(gate, "keep_free_bytes", 2**62)  # as if the disk were full
    status, answer = raw(server.port, "POST", "/volumes?format=nii.gz", small.read_bytes())
    assert status == 503 and error_of(answer).startswith("not enough free disk space for ")
    monkeypatch.undo()

    monkeypatch.setenv(memory.BUDGET_ENV, "1")  # 1 GB, almost all of it held by work under way
    with memory.reserve(2**30 - 1000):
        status, answer = raw(server.port, "POST", "/volumes?format=nii.gz", small.read_bytes())
    assert status == 503 and "of memory is needed and" in error_of(answer)
    assert stored(server) == before
    status, _ = raw(server.port, "POST", "/volumes?format=nii.gz", small.read_bytes())
    assert status == 201


def test_the_client_retries_a_503_as_told(server, small):
    """Both upload places taken: the client waits the Retry-After and sends again, within its retry_s."""
    gate = server.app.state.uploads
    held = ExitStack()
    for _ in range(MAX_UPLOADS):
        held.enter_context(gate.slot(0))
    with pytest.raises(DiffuGTSError, match="uploads are being received already"):
        Client(server.url, TOKEN, retry_s=1).upload(small)
    threading.Timer(1.0, held.close).start()
    started = time.monotonic()
    assert Client(server.url, TOKEN, retry_s=10).upload(small)
    assert time.monotonic() - started >= 1.0


def test_a_cross_origin_text_plain_post_is_refused(open_server, small):
    """What any web page can send to 127.0.0.1 without a CORS preflight: JSON as text/plain (or a form)."""
    upload = json.loads(raw(open_server.port, "POST", "/volumes?format=nii.gz", small.read_bytes(), token=None)[1])
    job = json.dumps({"volume": upload["id"], **FAST})
    for content_type in ("text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x", None):
        headers = {"Content-Type": content_type} if content_type else {}
        status, answer = raw(open_server.port, "POST", "/jobs", job.encode(), headers, token=None)
        assert status == 415, (content_type, answer)
        assert "Content-Type: application/json" in error_of(answer)
    assert not open_server.app.state.jobs._jobs  # nothing was queued
    status, _ = raw(open_server.port, "POST", "/jobs", job, token=None)  # the control: application/json
    assert status == 202


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1.evil.example", "localhost.evil",
                                  "[::2]:8765", "", "0.0.0.0:8765"])
def test_a_rebinding_host_header_is_refused_before_anything_else(open_server, server, small, host):
    """A page on evil.example whose name now resolves to 127.0.0.1 sends its own name as Host."""
    for running, token in ((open_server, None), (server, TOKEN)):
        for method, target, body in (("GET", "/health", None), ("POST", "/volumes?format=nii.gz", small.read_bytes()),
                                     ("GET", "/openapi.json", None)):
            status, answer = raw(running.port, method, target, body, {"Host": host}, token=token)
            assert status == 403, (host, target)
            assert "is not a name this server answers to" in error_of(answer)
    for good in ("127.0.0.1", f"127.0.0.1:{server.port}", f"localhost:{server.port}", "[::1]:8765"):
        assert raw(server.port, "GET", "/health", headers={"Host": good}, token=None)[0] == 200


def test_host_names_without_ports_and_which_are_allowed():
    from diffugts.serve.security import allowed_hosts, host_name

    assert [host_name(h) for h in ("gpu-box:8765", "[::1]:8765", "::1", "LocalHost", "a.b")] == [
        "gpu-box", "::1", "::1", "localhost", "a.b"]
    assert allowed_hosts("127.0.0.1") >= {"localhost", "127.0.0.1", "::1"}
    assert "gpu-box" in allowed_hosts("127.0.0.1", ["GPU-box"])
    assert allowed_hosts("0.0.0.0") is None and allowed_hosts("0.0.0.0", ["gpu-box"]) == {"gpu-box"}


def test_the_api_description_needs_the_token_and_there_are_no_docs_pages(server):
    for target in ("/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"):
        status, answer = raw(server.port, "GET", target, token=None)
        assert status == 401 and error_of(answer) == "missing or wrong token", target
    status, answer = raw(server.port, "GET", "/openapi.json")
    assert status == 200 and "/jobs/{job_id}" in json.loads(answer)["paths"]
    assert raw(server.port, "GET", "/docs")[0] == 404


def test_internal_errors_reach_clients_as_one_line_without_details(server, small, monkeypatch, caplog):
    from diffugts.serve import app as app_module
    from diffugts.serve import jobs as jobs_module

    secret = f"{server.work_dir}/secret-internal-path"

    def broken(*_args, **_kwargs):
        raise RuntimeError(secret)

    monkeypatch.setattr(app_module, "read_upload", broken)
    status, answer = raw(server.port, "POST", "/volumes?format=nii.gz", small.read_bytes())
    assert status == 500 and error_of(answer) == "internal error; the server's log has the details"
    assert secret in caplog.text  # the operator still sees it
    monkeypatch.undo()

    client = Client(server.url, TOKEN)
    volume_id = client.upload(small)
    monkeypatch.setattr(jobs_module.segment_job, "prepare", broken)
    job_id = client.submit(volume_id, FAST)["id"]
    with pytest.raises(DiffuGTSError) as failed:
        client.wait(job_id)
    assert str(failed.value) == "the server's job failed: internal error; the server's log has the details."


def test_reports_carry_no_server_paths(server, small, tmp_path):
    client = Client(server.url, TOKEN)
    volume_id = client.upload(small)
    job_id = client.submit(volume_id, FAST)["id"]
    client.wait(job_id)
    text = client.download(job_id, tmp_path)["report.json"].read_text()
    report = json.loads(text)
    assert report["image"] == f"../../volumes/{volume_id}.nii.gz"
    assert str(server.work_dir) not in text and "/DiffuGTSSlicer/" not in text
    heads = report["models"]["attention_heads"]
    assert heads.endswith(".safetensors") and "/" not in heads


def test_a_download_keeps_its_job_folder_while_newer_jobs_push_the_job_out(server, small, tmp_path):
    """The queue keeps 2 jobs: a third pushes out the first, whose file is still being sent."""
    client = Client(server.url, TOKEN)
    volume_id = client.upload(small)
    queue = server.app.state.jobs
    first = queue.get(client.submit(volume_id, FAST)["id"])
    client.wait(first.id)
    with queue.download(first, "report.json") as path:
        for _ in range(2):
            client.wait(client.submit(volume_id, FAST)["id"])
        with pytest.raises(KeyError):
            queue.get(first.id)  # pushed out of the queue...
        assert json.loads(path.read_text())["prompts"]  # ...but its file is still there to be sent
    assert not first.folder.exists()  # and gone once the download ended


@pytest.mark.slow
def test_serve_without_a_token_makes_a_random_one_and_requires_it(tmp_path):
    """As Jupyter does: on loopback, with no DIFFUGTS_TOKEN or --token-file, a fresh token is printed and needed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {key: value for key, value in os.environ.items() if key != "DIFFUGTS_TOKEN"}
    process = subprocess.Popen([sys.executable, "-m", "diffugts", "serve", "--port", str(port), "--device", "cpu",
                                "--work-dir", str(tmp_path)], stderr=subprocess.PIPE, text=True, env=env)
    try:
        tokens = []
        for line in process.stderr:
            tokens += re.findall(r"this run's token is ([0-9a-f]{32}) ", line)
            if "serving on" in line:
                break
        (token,) = tokens
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                assert Client(url).health()["status"] == "ok"
                break
            except DiffuGTSError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        with pytest.raises(DiffuGTSError, match="Set DIFFUGTS_TOKEN"):
            Client(url).job("0" * 32)
        with pytest.raises(DiffuGTSError, match="answered 404"):
            Client(url, token).job("0" * 32)
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
    assert process.returncode == 0
