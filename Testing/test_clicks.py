"""Points and boxes (issue 18): a click corrects a prompt's result, on a cached volume, through every entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

from diffugts.data.phantom import make_phantom
from diffugts.errors import DiffuGTSError
from diffugts.io import write_volume
from diffugts.segment import PRESETS
from diffugts.segment.job import SegmentRequest, prepare
from diffugts.segment.points import ClickBox, Point
from serve_support import TOKEN, running_server

FAST = PRESETS["fast"]
PROMPT = "kidney tumor"


def dice(mask: np.ndarray, truth: np.ndarray) -> float:
    return 2 * float((mask & truth).sum()) / max(1, int(mask.sum() + truth.sum()))


def deepest_ras(volume, region: np.ndarray) -> tuple[float, float, float]:
    """The RAS position of the voxel of ``region`` farthest from its border (where a simulated click goes)."""
    k, j, i = np.unravel_index(int(np.argmax(ndimage.distance_transform_edt(region))), region.shape)
    return tuple(float(v) for v in (volume.grid.ijk_to_ras @ np.array([i, j, k, 1.0]))[:3])


@pytest.fixture(scope="module")
def phantom():
    """A kidney-tumor phantom whose tumor the text prompt misses (measured: Dice 0 with its kidney as organ mask)."""
    return make_phantom(PROMPT, "CT", (48, 48, 40), seed=4)


@pytest.fixture(scope="module")
def kidney(phantom):
    tumor = phantom.mask.array > 0
    values, counts = np.unique(phantom.organs.array[tumor], return_counts=True)
    organ = (phantom.organs.array == values[np.argmax(counts)]) | tumor
    return phantom.image.like(organ.astype(np.uint8), modality="mask")


def test_a_positive_click_finds_the_tumor_the_text_missed_without_encoding_again(segmenter, phantom, kidney):
    truth = phantom.mask.array > 0
    text = segmenter(phantom.image, PROMPT, settings=FAST, organ_mask=kidney)
    assert dice(text.findings[0].mask.array > 0, truth) < 0.2
    encoded, attention = segmenter.volumes.misses, segmenter.stages.caches["attention"].misses
    clicked = segmenter(phantom.image, PROMPT, settings=FAST, organ_mask=kidney,
                        points=[Point(deepest_ras(phantom.image, truth))])
    finding = clicked.findings[0]
    assert dice(finding.mask.array > 0, truth) > 0.5  # measured 0.77
    assert finding.found and finding.clicks.positive
    # the click reran what it changes, not the encoding, the organ context or the text's attention
    assert segmenter.volumes.misses == encoded and segmenter.stages.caches["attention"].misses == attention
    assert clicked.cache["volume_misses"] == text.cache["volume_misses"]


def test_a_negative_click_removes_the_false_positive_it_lands_on(segmenter, phantom):
    truth = phantom.mask.array > 0
    mask = segmenter(phantom.image, PROMPT, settings=FAST).findings[0].mask.array > 0
    labels, _ = ndimage.label(mask & ~truth)
    assert labels.max() > 0, "the text prompt left no false positive to click on"
    largest = labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1
    click = Point(deepest_ras(phantom.image, largest), positive=False)
    refined, sampled = segmenter.stages.caches["refine"].misses, segmenter.samples.misses
    after = segmenter(phantom.image, PROMPT, settings=FAST, points=[click]).findings[0].mask.array > 0
    assert not (after & largest).any()
    # a negative point changes neither what is inpainted nor what the refinement reads: both reused
    assert segmenter.stages.caches["refine"].misses == refined and segmenter.samples.misses == sampled
    samples = segmenter.samples.misses
    again = segmenter(phantom.image, PROMPT, settings=FAST, points=[click]).findings[0].mask.array > 0
    assert np.array_equal(again, after) and segmenter.samples.misses == samples  # same clicks: all from caches


def test_a_box_keeps_the_finding_inside_it(segmenter, phantom):
    from diffugts.segment.clicks import box_mask

    truth = phantom.mask.array > 0
    k, j, i = np.nonzero(truth)
    where = (phantom.image.grid.ijk_to_ras @ np.stack([i, j, k, np.ones_like(i)]))[:3]  # an oblique grid
    box = ClickBox(tuple(where.min(1)), tuple(where.max(1)))
    inside = box_mask(phantom.image, box)
    assert inside[truth].all()  # the box's faces go through voxel centres: those are inside
    near = ndimage.binary_dilation(inside)
    text = segmenter(phantom.image, PROMPT, settings=FAST).findings[0]
    assert (text.mask.array[~near] > 0).any()
    boxed = segmenter(phantom.image, PROMPT, settings=FAST, box=box).findings[0]
    assert not (boxed.mask.array[~near] > 0).any() and boxed.probability.array[~near].max() < 0.5
    assert boxed.attention.array[~near].max() < 0.5


def test_clicks_outside_the_volume_or_naming_no_prompt_are_clear_errors(segmenter, phantom, tmp_path):
    far = Point((0.0, 0.0, 5000.0))
    with pytest.raises(DiffuGTSError, match=r"point \(0, 0, 5000\) of prompt 'kidney tumor' is outside the volume, "
                                            r"which spans R .* mm \(RAS\)"):
        segmenter(phantom.image, PROMPT, settings=FAST, points=[far])
    with pytest.raises(DiffuGTSError, match="must say which of the 2 prompts"):
        segmenter(phantom.image, [PROMPT, "liver tumor"], settings=FAST, points=[Point((0.0, 0.0, 0.0))])
    # a job refuses it when it reads its inputs, before any model runs
    path = write_volume(phantom.image, tmp_path / "phantom.nii.gz")
    with pytest.raises(DiffuGTSError, match="outside the volume"):
        prepare(path, SegmentRequest.from_json({"prompts": [PROMPT], "points": [{"position": [0, 0, 5000]}]}))


def test_a_request_reads_lps_and_ties_each_click_to_a_prompt():
    request = SegmentRequest.from_json({"prompts": [PROMPT, "liver tumor"], "coordinates": "LPS",
                                        "points": [{"prompt": "liver tumor", "position": [1, 2, 3], "positive": False}],
                                        "boxes": [{"prompt": PROMPT, "min": [0, 0, 0], "max": [5, 6, 7]}]})
    assert request.points == (Point((-1.0, -2.0, 3.0), False, "liver tumor"),)
    assert request.boxes == (ClickBox((0.0, 0.0, 0.0), (-5.0, -6.0, 7.0), PROMPT),)
    assert SegmentRequest.from_json(request.to_json()) == request  # travels as RAS
    assert "points" not in SegmentRequest((PROMPT,)).to_json()  # no clicks: the request of an earlier version
    for bad, message in (({"points": [{"position": [1, 2]}]}, "three finite numbers"),
                         ({"points": [{"prompt": "lung tumor", "position": [1, 2, 3]}]}, "not among the prompts"),
                         ({"points": [{"position": [1, 2, 3], "where": 1}]}, "unknown field"),
                         ({"coordinates": "IJK"}, "unknown coordinates")):
        with pytest.raises(DiffuGTSError, match=message):
            SegmentRequest.from_json({"prompts": [PROMPT], **bad})


def engine(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "diffugts", *args], capture_output=True, text=True, timeout=300,
                          **kwargs)


def test_segment_command_takes_points_in_lps_and_records_them(tmp_path):
    image = make_phantom(PROMPT, "CT", (20, 20, 12), seed=3).image
    path = write_volume(image, tmp_path / "small.nii.gz")
    r, a, s = (image.grid.ijk_to_ras @ np.array([10, 10, 6, 1.0]))[:3]
    out = tmp_path / "out"
    result = engine("segment", str(path), "--prompt", PROMPT, "--fast", "--outputs", "labels", "--lps",
                    f"--point={-r},{-a},{s}", f"--negative-point={PROMPT}@{-r},{-a},{s + 8}", "--out", str(out))
    assert result.returncode == 0, result.stderr
    clicks = json.loads((out / "report.json").read_text())["prompts"][0]["clicks"]
    assert [p["positive"] for p in clicks["points"]] == [True, False] and clicks["box"] is None
    np.testing.assert_allclose(clicks["points"][0]["position_ras"], [r, a, s], atol=1e-3)
    assert clicks["points"][0]["voxel_ijk"] == [10, 10, 6]
    outside = engine("segment", str(path), "--prompt", PROMPT, "--point=0,0,9000", "--out", str(tmp_path / "o2"))
    lines = outside.stderr.strip().splitlines()
    assert outside.returncode == 2 and len(lines) == 1 and "outside the volume, which spans" in lines[0]
    bad = engine("segment", str(path), "--prompt", PROMPT, "--box=1,2,3", "--out", str(tmp_path / "o3"))
    assert bad.returncode == 2 and "--box '1,2,3' is not two corners of 6" in bad.stderr


def test_a_server_job_with_clicks_reuses_the_volume_and_reports_them(segmenter, tmp_path):
    from diffugts.client import Client

    image = make_phantom(PROMPT, "CT", (20, 20, 12), seed=5).image
    path = write_volume(image, tmp_path / "small.nii.gz")
    r, a, s = (image.grid.ijk_to_ras @ np.array([9, 11, 5, 1.0]))[:3]
    with running_server(segmenter, tmp_path / "work", token=TOKEN) as server:
        client = Client(server.url, TOKEN)
        volume = client.upload(path)
        reports = []
        for extra in ({}, {"points": [{"prompt": PROMPT, "position": [-r, -a, s], "positive": True}],
                           "boxes": [{"prompt": PROMPT, "min": [-r - 30, -a - 30, s - 30], "max": [-r + 30, -a + 30, s + 30]}],
                           "coordinates": "LPS"}):
            job_id = client.submit(volume, {"prompts": [PROMPT], "quality": "fast", **extra})["id"]
            client.wait(job_id)
            reports.append(json.loads(client.download(job_id, tmp_path / job_id)["report.json"].read_text()))
        outside = client.submit(volume, {"prompts": [PROMPT], "points": [{"position": [0, 0, 9000]}]})["id"]
        with pytest.raises(DiffuGTSError, match="outside the volume"):
            client.wait(outside)
    first, clicked = reports
    assert clicked["cache"]["volume_misses"] == first["cache"]["volume_misses"]  # the click did not re-encode
    entry = clicked["prompts"][0]
    np.testing.assert_allclose(entry["clicks"]["points"][0]["position_ras"], [r, a, s], atol=1e-3)
    assert entry["clicks"]["box"]["min_ras"][2] == pytest.approx(s - 30, abs=1e-3) and entry["found"]
    assert first["prompts"][0]["clicks"] == {"points": [], "box": None}
