"""`diffugts serve` and its client, over real HTTP on loopback with the real demo models: tokens, bind refusal,
size cap, traversal attempts, corrupt uploads, 20 concurrent clients, the volume cache, cancellation, and
`diffugts segment --server` against a local run."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from serve_support import TOKEN, error_of, raw, running_server

from diffugts import __version__
from diffugts.cli import main
from diffugts.client import Client
from diffugts.data.phantom import make_phantom
from diffugts.errors import DiffuGTSError
from diffugts.io import read_grid, read_volume, write_volume
from diffugts.progress import parse_progress_line
from diffugts.segment import job
from diffugts.segment.job import SegmentRequest
from diffugts.segment.write import output_names
from diffugts.serve.security import check_bind, is_loopback

CAP = 2**20  # the test server's upload cap: 1 MB
UNKNOWN = "0" * 32  # a well-formed id that no volume or job has
PROMPTS = [f"{organ} {word}" for organ in ("kidney", "liver", "lung", "pancreas", "spleen")
           for word in ("tumor", "mass", "lesion", "cancer")]
FAST = {"quality": "fast"}
TERMINATED = "mass in the pancreatic head"  # the prompt of the run that is terminated: no other test uses it


def engine(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "diffugts", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def phantom_file(folder: Path, seed: int, shape=(20, 20, 12)) -> tuple[Path, object]:
    """A small kidney-tumor phantom (its own voxels and grid for each seed and shape), written as .nii.gz."""
    image = make_phantom("kidney tumor", "CT", shape, seed=seed).image
    return write_volume(image, folder / f"phantom_{seed}_{'x'.join(map(str, shape))}.nii.gz"), image


def listing(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


@pytest.fixture(scope="module")
def server(segmenter, tmp_path_factory):
    work = tmp_path_factory.mktemp("serve") / "work"
    with running_server(segmenter, work, token=TOKEN, max_upload_bytes=CAP, max_volumes=32) as running:
        yield running
    assert not work.exists()  # the server's work folder goes at shutdown


@pytest.fixture(scope="module")
def client(server) -> Client:
    return Client(server.url, TOKEN)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return phantom_file(tmp_path_factory.mktemp("small"), seed=1)


@pytest.fixture(scope="module")
def done(client, small, tmp_path_factory):
    """A finished job on the small phantom: (volume id, job id, the downloaded files)."""
    volume_id = client.upload(small[0])
    job_id = client.submit(volume_id, {"prompts": ["kidney tumor"], **FAST})["id"]
    client.wait(job_id)
    return volume_id, job_id, client.download(job_id, tmp_path_factory.mktemp("done"))


def test_health_needs_no_token_and_tells_only_status_and_version(server):
    status, body = raw(server.port, "GET", "/health", token=None)
    assert status == 200 and json.loads(body) == {"status": "ok", "version": __version__}


@pytest.mark.parametrize(("method", "target"), [
    ("GET", f"/jobs/{UNKNOWN}"), ("DELETE", f"/jobs/{UNKNOWN}"), ("GET", f"/jobs/{UNKNOWN}/files"),
    ("GET", f"/jobs/{UNKNOWN}/files/report.json"), ("POST", "/jobs"), ("POST", "/volumes?format=nii.gz"),
    ("DELETE", f"/volumes/{UNKNOWN}")])
def test_missing_and_wrong_tokens_are_refused(server, small, method, target):
    body = small[0].read_bytes() if target.startswith("/volumes?") else b"{}" if method == "POST" else None
    before = listing(server.work_dir)
    for authorization in (None, "Bearer wrong-token-0123456789abcdef", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x",
                          f"Basic {TOKEN}", TOKEN, "Bearer "):
        headers = {"Authorization": authorization} if authorization else {}
        status, answer = raw(server.port, method, target, body, headers, token=None)
        assert status == 401, (authorization, answer)
        assert error_of(answer) == "missing or wrong token"
    assert listing(server.work_dir) == before  # a refused upload leaves nothing behind
    status, _ = raw(server.port, method, target, body, token=TOKEN)
    assert status != 401


def test_the_client_says_to_set_the_token(server):
    for token in (None, "wrong-token-0123456789abcdef"):
        with pytest.raises(DiffuGTSError, match="Set DIFFUGTS_TOKEN"):
            Client(server.url, token).job(UNKNOWN)


def test_a_non_loopback_bind_needs_a_token():
    assert all(is_loopback(host) for host in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(host) for host in ("0.0.0.0", "::", "192.168.1.20", "gpu-box.example.org", ""))
    for host in ("0.0.0.0", "::", "10.0.0.5", "gpu-box"):
        with pytest.raises(DiffuGTSError, match="without a token"):
            check_bind(host, None)
        check_bind(host, TOKEN)
    check_bind("127.0.0.1", None)
    with pytest.raises(DiffuGTSError, match="at least 16"):
        check_bind("0.0.0.0", "short")


def test_serve_refuses_a_public_bind_without_a_token_before_loading_models(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "DIFFUGTS_TOKEN"}
    started = time.monotonic()
    result = engine("serve", "--host", "0.0.0.0", "--port", "0", env=env, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "diffugts: error: refusing to listen on 0.0.0.0 without a token: anyone who can reach it could use it. "
        "Set DIFFUGTS_TOKEN or --token-file, or keep the default --host 127.0.0.1 and connect through an SSH tunnel."]
    (tmp_path / "token").write_text("too-short\n")
    result = engine("serve", "--host", "0.0.0.0", "--token-file", str(tmp_path / "token"), env=env, timeout=120)
    assert result.returncode == 2 and "at least 16" in result.stderr and "serving" not in result.stderr
    assert time.monotonic() - started < 60


def test_oversized_uploads_are_413_and_leave_nothing_on_disk(server, client, tmp_path):
    before = listing(server.work_dir)
    too_big = b"\0" * (CAP + 1)
    status, body = raw(server.port, "POST", "/volumes?format=nii", too_big)  # refused on its Content-Length
    assert status == 413 and "cap of 1.0 MB" in error_of(body)

    def chunks():  # no Content-Length: the cap is found while the body streams in
        for _ in range(4):
            yield b"\0" * (CAP // 2)

    status, body = raw(server.port, "POST", "/volumes?format=nii", chunks())
    assert status == 413 and "cap of 1.0 MB" in error_of(body)
    (tmp_path / "big.nii").write_bytes(too_big)
    with pytest.raises(DiffuGTSError, match="cap of 1.0 MB.*--max-upload-mb"):
        client.upload(tmp_path / "big.nii")
    assert listing(server.work_dir) == before


def test_traversal_attempts_are_refused_and_serve_nothing_outside_the_job(server, done):
    volume_id, job_id, _ = done
    secret = server.work_dir.parent / "secret.txt"
    secret.write_text("SECRET-CONTENT")
    volume_file = server.work_dir / "volumes" / f"{volume_id}.nii.gz"
    assert volume_file.is_file()
    (server.work_dir / "jobs" / job_id / "planted.txt").write_text("SECRET-CONTENT")  # in the folder, not written
    files = f"/jobs/{job_id}/files"
    attempts = [
        ("GET", f"{files}/planted.txt"), ("GET", f"{files}/./planted.txt"), ("GET", f"{files}/.%2fplanted.txt"),
        ("GET", f"{files}/../../../secret.txt"), ("GET", f"{files}/..%2f..%2f..%2fsecret.txt"),
        ("GET", f"{files}/%2e%2e%2f%2e%2e%2f%2e%2e%2fsecret.txt"), ("GET", f"{files}/%2e%2e"), ("GET", f"{files}/.."),
        ("GET", f"{files}/..%5c..%5c..%5csecret.txt"), ("GET", f"{files}/{secret}"),
        ("GET", f"{files}/{str(secret).replace('/', '%2f')}"), ("GET", f"{files}/..%2fvolumes%2f{volume_id}.nii.gz"),
        ("GET", f"{files}/{volume_file}"), ("GET", f"{files}/report.json%00"), ("GET", "/jobs/../../secret.txt"),
        ("GET", "/jobs/%2e%2e/files/secret.txt"), ("GET", f"/jobs/%2e%2e%2f{job_id}/files/report.json"),
        ("GET", f"/jobs/{job_id.upper()}/files/report.json"), ("GET", f"/jobs/{job_id}0/files/report.json"),
        ("GET", f"/jobs/{job_id[:-1]}/files/report.json"), ("GET", f"/jobs/{job_id[:-2]}%2e%2e/files/report.json"),
        ("GET", f"/jobs/{volume_id}/files/report.json"), ("DELETE", f"/volumes/..%2f{volume_id}"),
        ("DELETE", f"/volumes/{volume_id}%2f..%2f..%2fsecret.txt"), ("DELETE", "/volumes/..%2f..%2fsecret.txt"),
        ("DELETE", f"/jobs/..%2f{job_id}")]
    for method, target in attempts:
        status, body = raw(server.port, method, target)
        assert 400 <= status < 500, (target, status)
        assert b"SECRET" not in body and volume_file.read_bytes() not in body, target
    for body, problem in ((b"x", "unsupported format"), (b"", "unsupported format")):
        status, answer = raw(server.port, "POST", "/volumes?format=..%2f..%2fsecret.txt", body)
        assert status == 400 and problem in error_of(answer)
    for volume in ("../secret.txt", f"../volumes/{volume_id}", str(secret), 7):
        status, answer = raw(server.port, "POST", "/jobs", json.dumps({"volume": volume, "prompts": ["x tumor"]}))
        assert status == 400 and "volume id" in error_of(answer)
    status, answer = raw(server.port, "POST", "/jobs", json.dumps({"volume": UNKNOWN, "prompts": ["kidney tumor"]}))
    assert status == 404
    assert secret.read_text() == "SECRET-CONTENT" and volume_file.is_file()
    status, body = raw(server.port, "GET", f"{files}/report.json")  # the control: a listed name is served
    assert status == 200 and json.loads(body)["prompts"][0]["prompt"] == "kidney tumor"


def test_corrupt_uploads_are_400_with_one_line(server, small):
    before = listing(server.work_dir)
    data = small[0].read_bytes()
    for file_format, body in (("nii.gz", b"not a volume at all"), ("nii.gz", data[: len(data) // 2]),
                              ("nrrd", b"NRRD0004\ntype: float\ndimension: 3\n"), ("mha", b"\x00" * 500),
                              ("nii", b"")):
        status, answer = raw(server.port, "POST", f"/volumes?format={file_format}", body)
        assert status == 400, (file_format, answer)
        message = error_of(answer)
        assert message.startswith("upload: ") or message == "the upload is empty"
        assert str(server.work_dir) not in message
    assert listing(server.work_dir) == before


def test_bad_job_requests_are_400_with_one_line(server, client, done, tmp_path):
    volume_id = done[0]
    for body in ("{not json", "[1, 2]", json.dumps({"volume": volume_id}),
                 json.dumps({"volume": volume_id, "prompts": []}),
                 json.dumps({"volume": volume_id, "prompts": ["kidney tumor"], "quality": "perfect"}),
                 json.dumps({"volume": volume_id, "prompts": ["kidney tumor"], "path": "/etc/passwd"}),
                 json.dumps({"prompts": ["kidney tumor"]}), "x" * 70_000):
        status, answer = raw(server.port, "POST", "/jobs", body, {"Content-Type": "application/json"})
        assert status in (400, 413), body[:80]
        error_of(answer)
    outside = client.submit(volume_id, {"prompts": ["kidney tumor"], "roi": "30:40,:,:"})["id"]
    with pytest.raises(DiffuGTSError, match="job failed: the ROI 30:40"):  # found when the job reads the image
        client.wait(outside)
    other_grid = client.upload(phantom_file(tmp_path, seed=2, shape=(22, 20, 12))[0])
    mismatched = client.submit(volume_id, {"prompts": ["kidney tumor"]}, organ_mask_id=other_grid)["id"]
    with pytest.raises(DiffuGTSError, match=f"job failed: volume {other_grid}: the organ mask is not on"):
        client.wait(mismatched)  # server paths become the ids the client knows


@pytest.mark.slow
def test_twenty_concurrent_clients_each_get_their_own_results(server, tmp_path):
    images = [phantom_file(tmp_path, seed=n, shape=(20 + n % 5, 20 + n % 3, 12 + n % 4)) for n in range(20)]

    def one(n: int):
        client = Client(server.url, TOKEN)
        volume_id = client.upload(images[n][0])
        job_id = client.submit(volume_id, {"prompts": [PROMPTS[n]], "seed": n, **FAST})["id"]
        client.wait(job_id)
        return volume_id, job_id, client.download(job_id, tmp_path / f"out_{n}")

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(one, range(20)))
    assert len({volume for volume, _, _ in answers}) == len({job for _, job, _ in answers}) == 20
    for n, (volume_id, _, written) in enumerate(answers):
        report = json.loads(written["report.json"].read_text())
        grid = images[n][1].grid
        assert [entry["prompt"] for entry in report["prompts"]] == [PROMPTS[n]]
        assert report["settings"]["seeds"] == [n] and report["grid"]["size"] == list(grid.size)
        assert report["image"].endswith(f"{volume_id}.nii.gz")  # the server read this client's own upload
        assert sorted(written) == sorted(output_names(1))
        for name in ("labels.nii.gz", "probability_1.nii.gz", "segmentation.seg.nrrd"):
            assert read_grid(written[name]).matches(grid, tolerance=1e-4), (n, name)


@pytest.mark.slow
def test_a_random_upload_name_never_decides_the_modality(client, small, tmp_path, monkeypatch):
    """Server ids are random hex: one holding 'adc' between digits (an MR word to the file-name guess) once
    made a CT upload read as MR and its job fail. The stored name is never a modality hint."""
    from diffugts.serve import volumes

    monkeypatch.setattr(volumes, "new_id", lambda: "0123456789adc0123456789abcdef012")
    volume_id = client.upload(small[0])
    assert volume_id == "0123456789adc0123456789abcdef012"
    job_id = client.submit(volume_id, {"prompts": ["kidney tumor"], **FAST})["id"]
    client.wait(job_id)
    report = json.loads(client.download(job_id, tmp_path)["report.json"].read_text())
    assert report["modality"] == "CT"


@pytest.mark.slow
def test_a_second_prompt_on_the_same_volume_reuses_its_encoding(client, tmp_path):
    path, _ = phantom_file(tmp_path, seed=41)
    volume_id = client.upload(path)
    caches = []
    for number, (volume, prompt) in enumerate([(volume_id, "kidney tumor"), (volume_id, "liver tumor"),
                                               (client.upload(path), "lung tumor")]):  # a re-upload: same voxels
        job_id = client.submit(volume, {"prompts": [prompt], **FAST})["id"]
        client.wait(job_id)
        caches.append(json.loads(client.download(job_id, tmp_path / str(number))["report.json"].read_text())["cache"])
    assert [c["volume_hits"] - caches[0]["volume_hits"] for c in caches] == [0, 1, 2]
    assert caches[2]["volume_misses"] == caches[0]["volume_misses"]


@pytest.mark.slow
def test_cancel_drops_a_queued_job_and_stops_a_running_one(server, client, small, tmp_path):
    long_path, _ = phantom_file(tmp_path, seed=7, shape=(48, 48, 32))
    long_volume = client.upload(long_path)
    running = client.submit(long_volume, {"prompts": ["spleen tumor"], "quality": "best"})["id"]
    queued = client.submit(client.upload(small[0]), {"prompts": ["liver mass"], **FAST})["id"]
    assert client.cancel(queued)["state"] == "cancelled"
    deadline = time.monotonic() + 120
    while client.job(running)["stage"] in ("queued", "starting"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    asked = time.monotonic()
    assert client.cancel(running)["state"] == "running"  # cooperative: it stops at its next progress report
    client.delete_volume(long_volume)  # accepted while the job still uses it: the file goes when the job ends
    status, answer = raw(server.port, "POST", "/jobs", json.dumps({"volume": long_volume, "prompts": ["spleen tumor"]}))
    assert status == 404, answer  # gone from the store at once
    while client.job(running)["state"] == "running":
        assert time.monotonic() - asked < 30
        time.sleep(0.05)
    for job_id in (running, queued):
        assert client.job(job_id)["state"] == "cancelled"
        assert not (server.work_dir / "jobs" / job_id).exists()
        status, answer = raw(server.port, "GET", f"/jobs/{job_id}/files")
        assert status == 409 and "cancelled" in error_of(answer)
        with pytest.raises(DiffuGTSError, match="cancelled on the server"):
            client.wait(job_id)
    assert not (server.work_dir / "volumes" / f"{long_volume}.nii.gz").exists()


@pytest.mark.slow
def test_segment_with_server_writes_what_a_local_run_writes(server, segmenter, small, tmp_path):
    path, image = small
    out = tmp_path / "remote"
    result = engine("--progress", "json", "segment", str(path), "--prompt", "kidney tumor", "--fast",
                    "--out", str(out), "--server", server.url, env={**os.environ, "DIFFUGTS_TOKEN": TOKEN})
    assert result.returncode == 0, result.stderr
    assert f"on {server.url}" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(output_names(1))  # no temp file left either
    stages = [parsed for parsed in map(parse_progress_line, result.stderr.splitlines()) if parsed]
    assert stages[0][0] == "upload" and stages[-1] == ("download", 1.0)
    report = json.loads((out / "report.json").read_text())
    assert report["image"] == str(path.resolve()) and report["server"]["url"] == server.url

    local = tmp_path / "local"
    _, written = job.run(segmenter, job.prepare(path, SegmentRequest(("kidney tumor",), quality="fast")), local)
    assert sorted(p.name for p in local.iterdir()) == sorted(p.name for p in out.iterdir())
    for name in output_names(1):
        if name.endswith(".nii.gz"):
            remote_volume, local_volume = read_volume(out / name), read_volume(local / name)
            assert remote_volume.grid.matches(image.grid, tolerance=1e-4), name
            np.testing.assert_array_equal(remote_volume.array, local_volume.array, err_msg=name)


def test_segment_with_server_errors_are_one_line(server, small, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DIFFUGTS_TOKEN", raising=False)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{unused.getsockname()[1]}"
    (tmp_path / "token").write_text("wrong-token-0123456789abcdef\n")
    cases = [([server.url], "Set DIFFUGTS_TOKEN"), ([server.url, "--token-file", str(tmp_path / "token")],
                                                    "missing or wrong token"),
             ([closed], "cannot reach the server"), (["ftp://gpu"], "not an http:// or https:// address"),
             ([server.url, "--heads", "h.safetensors"], "with --server the server's models are used")]
    for arguments, expected in cases:
        code = main(["--progress", "none", "segment", str(small[0]), "--prompt", "kidney tumor",
                     "--out", str(tmp_path / "out"), "--server", *arguments])
        error = capsys.readouterr().err.strip()
        assert code == 2 and expected in error and len(error.splitlines()) == 1, error
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_terminating_segment_with_server_cancels_the_servers_job(server, tmp_path):
    path, _ = phantom_file(tmp_path, seed=8, shape=(48, 48, 32))
    process = subprocess.Popen(
        [sys.executable, "-m", "diffugts", "--progress", "json", "segment", str(path), "--prompt", TERMINATED,
         "--quality", "best", "--out", str(tmp_path / "out"), "--server", server.url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "DIFFUGTS_TOKEN": TOKEN})
    for line in process.stderr:  # wait until the server's job is running
        parsed = parse_progress_line(line)
        if parsed and parsed[0] not in ("upload", "queued", "starting"):
            break
    process.send_signal(signal.SIGTERM)  # what Slicer's Cancel does
    _, rest = process.communicate(timeout=60)
    assert process.returncode == 130 and "diffugts: interrupted" in rest
    # the queue's own record of the job (the API lists no jobs: an id is known only to who submitted it)
    (server_job,) = [j for j in server.app.state.jobs._jobs.values() if j.request.prompts == (TERMINATED,)]
    deadline = time.monotonic() + 30
    while server_job.state != "cancelled":
        assert time.monotonic() < deadline, server_job.state
        time.sleep(0.05)
    assert not server_job.folder.exists() and not (tmp_path / "out").exists()


def serve_process(*arguments: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, int]:
    """A `diffugts serve` process on a free loopback port (CPU, the demo models) once it answers; and its port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "diffugts", "serve", "--port", str(port), "--device", "cpu",
                                *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while True:
        try:
            assert Client(f"http://127.0.0.1:{port}", TOKEN).health()["status"] == "ok"
            return process, port
        except DiffuGTSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(f"diffugts serve did not start: {process.communicate()[1]}") from None
            time.sleep(0.2)


@pytest.mark.slow
def test_serve_command_starts_answers_and_removes_its_work_folder(tmp_path):
    (tmp_path / "token").write_text(TOKEN + "\n")
    process, port = serve_process("--token-file", str(tmp_path / "token"), "--work-dir", str(tmp_path))
    try:
        (work,) = tmp_path.glob("diffugts-serve-*")
        assert {p.name for p in work.iterdir()} == {"volumes", "jobs"}
        with pytest.raises(DiffuGTSError, match="Set DIFFUGTS_TOKEN"):
            Client(f"http://127.0.0.1:{port}").job(UNKNOWN)
    finally:
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors
    assert f"serving on http://127.0.0.1:{port} (token required)" in errors
    assert not list(tmp_path.glob("diffugts-serve-*"))


@pytest.mark.slow
def test_serve_stops_by_itself_when_the_process_it_was_started_with_ends(tmp_path):
    """Slicer starts its warm engine with --stop-with its own id: a crash of Slicer must not leave it running."""
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # stands in for Slicer
    process, _ = serve_process("--work-dir", str(tmp_path), "--stop-with", str(parent.pid),
                               env={**os.environ, "DIFFUGTS_TOKEN": TOKEN})
    try:
        parent.kill()  # a crash: nothing tells the server
        parent.wait()
        _, errors = process.communicate(timeout=30)
    finally:
        parent.kill()
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, errors
    assert f"process {parent.pid} (--stop-with) has ended; stopping" in errors
    assert not list(tmp_path.glob("diffugts-serve-*"))  # its work folder went with it


def test_serve_refuses_a_stop_with_process_that_is_not_running(capsys):
    pid = 4_000_000  # beyond any pid_max: never a running process
    code = main(["serve", "--port", "0", "--stop-with", str(pid)])  # refused before any model is loaded
    error = capsys.readouterr().err.strip()
    assert code == 2 and f"--stop-with {pid}: no process {pid} is running" in error and len(error.splitlines()) == 1
