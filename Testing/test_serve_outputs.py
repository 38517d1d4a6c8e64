"""What a server job writes and when: the segmentation, label map and report before the job is done, its maps
on their first download (the same bytes a local run writes), only the kinds a job asks for, and the maps of
jobs older than the last LAZY_JOBS written out so that their results leave memory."""

from __future__ import annotations

import json
import time

import pytest
import SimpleITK as sitk
from serve_support import TOKEN, error_of, raw, running_server

from diffugts.client import Client
from diffugts.data.phantom import make_phantom
from diffugts.io import write_volume
from diffugts.segment import job as segment_job
from diffugts.segment.job import SegmentRequest
from diffugts.segment.outputs import MAPS, kind_of, output_files, output_names
from diffugts.serve.jobs import LAZY_JOBS

pytestmark = pytest.mark.slow  # the demo pipeline, several jobs
FAST = {"quality": "fast"}


@pytest.fixture(scope="module")
def server(segmenter, tmp_path_factory):
    with running_server(segmenter, tmp_path_factory.mktemp("serve") / "work", token=TOKEN) as running:
        yield running


@pytest.fixture(scope="module")
def client(server) -> Client:
    return Client(server.url, TOKEN)


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    image = make_phantom("kidney tumor", "CT", (20, 20, 12), seed=4).image
    return write_volume(image, tmp_path_factory.mktemp("in") / "phantom.nii.gz")


@pytest.fixture(scope="module")
def volume_id(client, image_file):
    return client.upload(image_file)


def finished(client: Client, volume_id: str, prompt: str, **request) -> str:
    """The id of a done job with ``prompt`` on the volume (and the other request fields given)."""
    job_id = client.submit(volume_id, {"prompts": [prompt], **FAST, **request})["id"]
    client.wait(job_id)
    return job_id


def job_folder(server, job_id: str):
    return server.work_dir / "jobs" / job_id


def map_files(prompts: int = 1) -> set[str]:
    return {file for name, file in output_files(prompts).items() if kind_of(name) in MAPS}


def test_a_jobs_maps_are_written_on_their_first_download_as_a_local_run_writes_them(server, client, volume_id,
                                                                                   segmenter, image_file, tmp_path):
    job_id = finished(client, volume_id, "kidney tumor")
    folder = job_folder(server, job_id)
    on_disk = {p.name for p in folder.iterdir()}
    assert on_disk == set(output_names(1)) - map_files()  # done before any map was made
    assert sorted(client.job(job_id)["files"]) == sorted(output_names(1))  # yet every file is listed

    status, body = raw(server.port, "GET", f"/jobs/{job_id}/files/attention_1.nii.gz")
    assert status == 200
    assert {p.name for p in folder.iterdir()} == on_disk | {"attention_1.nii.gz"}  # that one only
    made = (folder / "attention_1.nii.gz").stat().st_mtime_ns
    assert raw(server.port, "GET", f"/jobs/{job_id}/files/attention_1.nii.gz")[1] == body
    assert (folder / "attention_1.nii.gz").stat().st_mtime_ns == made  # written once

    written = client.download(job_id, tmp_path / "remote")
    assert sorted(written) == sorted(output_names(1))
    local = tmp_path / "local"
    segment_job.run(segmenter, segment_job.prepare(image_file, SegmentRequest(("kidney tumor",), **FAST)), local)
    for name in map_files():
        remote_image, local_image = sitk.ReadImage(str(written[name])), sitk.ReadImage(str(local / name))
        assert remote_image.GetPixelID() == local_image.GetPixelID(), name
        assert sitk.GetArrayFromImage(remote_image).tobytes() == sitk.GetArrayFromImage(local_image).tobytes(), name


def test_a_job_writes_and_lists_only_the_kinds_it_asks_for(server, client, volume_id, tmp_path):
    job_id = finished(client, volume_id, "liver tumor", outputs=["segmentation", "attention"])
    expected = output_names(1, outputs=("segmentation", "attention"))
    assert sorted(client.job(job_id)["files"]) == sorted(expected)
    assert sorted(client.download(job_id, tmp_path)) == sorted(expected)
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["outputs"].values()) == set(expected)
    status, body = raw(server.port, "GET", f"/jobs/{job_id}/files/probability_1.nii.gz")
    assert status == 404 and error_of(body)


def test_a_job_asking_for_an_unknown_kind_is_refused_in_one_line(server, volume_id):
    status, body = raw(server.port, "POST", "/jobs",
                       json.dumps({"volume": volume_id, "prompts": ["x"], "outputs": ["heatmap"]}))
    assert status == 400 and "unknown output kind" in error_of(body)


def test_maps_of_jobs_older_than_the_last_few_are_written_out(server, client, volume_id):
    jobs = [finished(client, volume_id, prompt) for prompt in ("lung tumor", "spleen tumor", "pancreas tumor")]
    assert LAZY_JOBS == 2
    waiting = server.app.state.jobs
    deadline = time.monotonic() + 60  # the worker writes them out just after the last job is done
    while waiting.get(jobs[0]).later and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not waiting.get(jobs[0]).later  # its result has left memory ...
    assert map_files() <= {p.name for p in job_folder(server, jobs[0]).iterdir()}  # ... its maps are on disk
    for job_id in jobs[1:]:
        assert set(waiting.get(job_id).later) == map_files()


def test_a_new_prompt_on_the_last_jobs_volume_does_not_read_it_again(client, volume_id, monkeypatch):
    import diffugts.io.read as read

    read_volume = read.read_volume
    finished(client, volume_id, "kidney mass")
    reads = []
    monkeypatch.setattr(read, "read_volume", lambda *args, **kwargs: reads.append(args) or read_volume(*args, **kwargs))
    finished(client, volume_id, "liver mass")
    assert reads == []
