"""Seconds per click through a warm `diffugts serve`, what the Slicer panel waits for after each placement.

    python benchmarks/bench_click_latency.py [--size 256x256x128] [--threads 2] [--clicks 3] [--json OUT]

One kidney-tumor CT phantom of bench_segment (int16, axial grid, centred on the tumor) of ``size`` is uploaded
once to a real `diffugts serve` on loopback, in this one run: (1) the first prompt ("kidney tumor": encoding
cached); (2) the baseline, a second prompt on the cached volume ("liver tumor"); (3) ``clicks`` corrections of
the first prompt, each a job with every click so far, as the panel sends them: positive at the tumor's centre,
then alternately negative 40 mm to the patient's right and positive 4 mm further up. Each job is timed by the
client from submit to the panel's files downloaded (segmentation and heat map), Fast preset. Load averages are
recorded before each job: on a shared machine they say how many cores the run really had.
"""

from __future__ import annotations

import argparse
import os
import json
import signal
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_latency import PANEL_OUTPUTS, server_job  # noqa: E402
from bench_segment import write_input  # noqa: E402
from bench_serve import _start_server  # noqa: E402

PROMPT, SECOND_PROMPT = "kidney tumor", "liver tumor"


def click_points(centre: list[float], count: int) -> list[dict]:
    """The panel's clicks so far, in RAS mm: positive at the centre, then negative and positive in turn."""
    points = [{"prompt": PROMPT, "position": centre, "positive": True}]
    for n in range(1, count):
        if n % 2:
            points.append({"prompt": PROMPT, "position": [centre[0] - 40.0, centre[1], centre[2]], "positive": False})
        else:
            points.append({"prompt": PROMPT, "position": [centre[0], centre[1], centre[2] + 4.0 * n], "positive": True})
    return points


def volume_centre(image: Path) -> list[float]:
    """RAS mm of the volume's centre voxel (the phantom's tumor)."""
    import numpy as np

    from diffugts.io import read_grid

    grid = read_grid(image)
    centre = (np.asarray(grid.size) - 1) / 2.0
    return [float(v) for v in (grid.ijk_to_ras @ np.array([*centre, 1.0]))[:3]]


def run(size: str, threads: int, clicks: int, folder: Path) -> dict:
    from diffugts.client import Client

    image, _ = write_input(size, folder)
    centre = volume_centre(image)
    token = "bench-" + folder.name
    env = {**os.environ, "DIFFUGTS_TOKEN": token, "DIFFUGTS_HOME": str(folder / "home")}
    process, url, start_s = _start_server(threads, env)
    try:
        client = Client(url, token)
        volume_id = client.upload(image)
        fast = {"quality": "fast", "outputs": PANEL_OUTPUTS}
        first = server_job(client, volume_id, {"prompts": [PROMPT], **fast}, folder / "first")
        second = server_job(client, volume_id, {"prompts": [SECOND_PROMPT], **fast}, folder / "second")
        rows = [server_job(client, volume_id, {"prompts": [PROMPT], **fast, "points": click_points(centre, n)},
                           folder / f"click{n}") for n in range(1, clicks + 1)]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)
    return {"size": size, "threads": threads, "server_start_s": start_s, "first": first, "second": second,
            "clicks": rows}


def table(result: dict) -> str:
    per_click = statistics.median(row["total_s"] for row in result["clicks"])
    second = result["second"]["total_s"]
    lines = ["| volume | threads | first prompt s | second prompt s (baseline) | per click s, median | "
             "click / second prompt | load before the clicks |", "|---|---:|---:|---:|---:|---:|---|",
             f"| {result['size']} | {result['threads']} | {result['first']['total_s']:.2f} | {second:.2f} | "
             f"{per_click:.2f} | {per_click / second:.2f} | "
             f"{', '.join(str(row['load']) for row in result['clicks'])} |"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="256x256x128")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clicks", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-clicks-") as folder:
        result = run(args.size, args.threads, args.clicks, Path(folder))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(table(result))


if __name__ == "__main__":
    main()
