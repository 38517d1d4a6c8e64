"""What a user waits for: a new prompt on a cached CT, from request to files ready, through a warm `diffugts serve`
and through the Python API, by stage (segment, write, the server's rest, transfer), with the bytes written, for
two versions of the engine in one run.

    python benchmarks/bench_latency.py --before DIR [--sizes 256x256x128 512x512x300] [--prompts 3 1]
                                       [--threads 2] [--json OUT]

DIR holds the other version's engine folder (``git archive COMMIT DiffuGTSSlicer | tar -x -C DIR``); this
checkout is "after". Per size (a kidney-tumor CT phantom of bench_segment, int16, axial grid), the two versions
run alternately, each in fresh processes with PYTHONPATH pointing at its engine and one shared DIFFUGTS_HOME:

- server: a real `diffugts serve` on loopback with a token; the volume is uploaded once and segmented with
  "kidney tumor" (its encoding is then cached); then each measured job uses a prompt not seen before on it
  (a repeated prompt would reuse its sample). Timed by the client: submit to done (the shipped client's
  polling), then downloading every file the job lists. "all": the default job; "panel" (after only): the job
  the Slicer panel sends (segmentation and heat map). Before, the panel got every file.
- api: a Segmenter kept in one process with freed memory kept (as the server does); per new prompt the
  Segmenter call, then write_result's default outputs (and the panel's, after).

Fast preset, ``--threads`` torch threads. Load averages are recorded before each measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serve import _load, _start_server  # noqa: E402

FIRST_PROMPT = "kidney tumor"
NEW_PROMPTS = ("liver tumor", "lung tumor", "spleen tumor", "pancreas tumor", "bladder tumor", "colon tumor",
               "stomach tumor", "adrenal tumor")
PANEL_OUTPUTS = ["segmentation", "attention"]
AFTER = Path(__file__).resolve().parents[1]
BAR_S, BAR_SIZE, BAR_MB = 2.5, "256x256x128", 15.0


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.iterdir() if path.is_file())


# -- the Python API, in a fresh process of one version (--api) ------------------------------------------------
def api_run(image: Path, prompts: list[str], threads: int, panel: bool) -> dict:
    """Load, read, first prompt; then per new prompt: Segmenter call, write_result (default outputs)."""
    from diffugts.allocator import keep_freed_memory

    keep_freed_memory()
    import torch

    torch.set_num_threads(threads)
    from diffugts.io import read_volume
    from diffugts.segment import PRESETS, Segmenter
    from diffugts.segment.write import write_result

    fast = PRESETS["fast"]
    segmenter = Segmenter.from_pretrained("demo-ct", device="cpu")
    start = time.perf_counter()
    volume = read_volume(image)
    row: dict = {"read_s": time.perf_counter() - start, "prompts": []}
    with tempfile.TemporaryDirectory(prefix="bench_latency_api_") as out:
        start = time.perf_counter()
        first = segmenter(volume, [FIRST_PROMPT], settings=fast)
        row["first_segment_s"] = time.perf_counter() - start
        write_result(first, volume, Path(out) / "first")
        for n, prompt in enumerate(prompts):
            entry: dict = {"prompt": prompt, "load": _load()}
            start = time.perf_counter()
            result = segmenter(volume, [prompt], settings=fast)
            entry["segment_s"] = time.perf_counter() - start
            entry["stages"] = {k: round(v, 3) for k, v in result.timings.items()}
            folder = Path(out) / f"all{n}"
            start = time.perf_counter()
            write_result(result, volume, folder)
            entry["write_s"], entry["bytes"] = time.perf_counter() - start, _folder_bytes(folder)
            if panel:
                folder = Path(out) / f"panel{n}"
                start = time.perf_counter()
                write_result(result, volume, folder, outputs=PANEL_OUTPUTS)
                entry["panel_write_s"], entry["panel_bytes"] = time.perf_counter() - start, _folder_bytes(folder)
            row["prompts"].append(entry)
    return row


def api_child(engine: Path, image: Path, prompts: list[str], threads: int, panel: bool, env: dict) -> dict:
    command = [sys.executable, __file__, "--api", str(image), "--threads", str(threads), "--prompt-list",
               json.dumps(prompts), *(["--panel"] if panel else [])]
    done = subprocess.run(command, capture_output=True, text=True, env={**env, "PYTHONPATH": str(engine)},
                          timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"api run failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the warm server -----------------------------------------------------------------------------------------
def server_job(client, volume_id: str, request: dict, out: Path) -> dict:
    """One job as a client sees it: submit to done (the client's own polling), then every listed file."""
    load, start = _load(), time.perf_counter()
    job_id = client.submit(volume_id, request)["id"]
    client.wait(job_id)
    done = time.perf_counter()
    client.download(job_id, out)
    end = time.perf_counter()
    timings = json.loads((out / "report.json").read_text())["timings_s"]
    return {"prompt": request["prompts"][0], "load": load, "to_done_s": done - start, "download_s": end - done,
            "total_s": end - start, "segment_s": timings["total"], "write_s": timings.get("write"),
            "bytes": _folder_bytes(out), "files": len(list(out.iterdir()))}


def server_run(engine: Path, image: Path, prompts: list[str], threads: int, panel: list[str], env: dict,
               folder: Path) -> dict:
    from diffugts.client import Client

    process, url, start_s = _start_server(threads, {**env, "PYTHONPATH": str(engine)})
    try:
        client = Client(url, env["DIFFUGTS_TOKEN"])
        volume_id = client.upload(image)
        fast = {"quality": "fast"}
        row = {"start_s": start_s, "first": server_job(client, volume_id, {"prompts": [FIRST_PROMPT], **fast},
                                                       folder / "first")}
        row["all"] = [server_job(client, volume_id, {"prompts": [p], **fast}, folder / f"all{n}")
                      for n, p in enumerate(prompts)]
        row["panel"] = [server_job(client, volume_id, {"prompts": [p], **fast, "outputs": PANEL_OUTPUTS},
                                   folder / f"panel{n}") for n, p in enumerate(panel)]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)
    return row


def measure_size(size: str, before: Path, prompts: int, threads: int, env: dict, folder: Path) -> dict:
    from bench_segment import write_input

    image, _ = write_input(size, folder)
    rows: dict = {}
    new, panel = list(NEW_PROMPTS[:prompts]), list(NEW_PROMPTS[prompts:2 * prompts])
    for name, engine in (("before", before), ("after", AFTER / "DiffuGTSSlicer")):  # each its own server and cache
        rows[name] = {"api": api_child(engine, image, new, threads, name == "after", env),
                      "server": server_run(engine, image, new, threads, panel if name == "after" else [], env,
                                           folder / f"serve_{name}")}
    return rows


def _median(rows: list[dict], key: str) -> float:
    values = [row[key] for row in rows if row.get(key) is not None]
    return statistics.median(values) if values else float("nan")


def table(results: dict) -> str:
    lines = ["| volume | version | path | segment s | write s | server rest + polling s | transfer s | "
             "end to end s | MB |", "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for size, rows in results["sizes"].items():
        for version, row in rows.items():
            api = row["api"]["prompts"]
            lines.append(f"| {size} | {version} | Python API, default outputs | {_median(api, 'segment_s'):.2f} | "
                         f"{_median(api, 'write_s'):.2f} | | | "
                         f"{statistics.median(p['segment_s'] + p['write_s'] for p in api):.2f} | "
                         f"{_median(api, 'bytes') / 1e6:.1f} |")
            if version == "after":
                lines.append(f"| | | Python API, the panel's outputs | {_median(api, 'segment_s'):.2f} | "
                             f"{_median(api, 'panel_write_s'):.2f} | | | "
                             f"{statistics.median(p['segment_s'] + p['panel_write_s'] for p in api):.2f} | "
                             f"{_median(api, 'panel_bytes') / 1e6:.1f} |")
            for variant, label in (("all", "warm server, default job, every file"),
                                   ("panel", "warm server, the panel's job")):
                jobs = row["server"][variant]
                if not jobs:
                    continue
                rest = statistics.median(j["to_done_s"] - j["segment_s"] - (j["write_s"] or 0) for j in jobs)
                write = _median(jobs, "write_s")
                lines.append(f"| | | {label} | {_median(jobs, 'segment_s'):.2f} | "
                             f"{'' if write != write else f'{write:.2f}'} | {rest:.2f} | "
                             f"{_median(jobs, 'download_s'):.2f} | {_median(jobs, 'total_s'):.2f} | "
                             f"{_median(jobs, 'bytes') / 1e6:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="folder with the other version's DiffuGTSSlicer folder")
    parser.add_argument("--sizes", nargs="+", default=["256x256x128"])
    parser.add_argument("--prompts", nargs="+", type=int, default=[3], help="new prompts per size (one value each)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--api", type=Path, help=argparse.SUPPRESS)  # one version's Python API run (child)
    parser.add_argument("--prompt-list", help=argparse.SUPPRESS)
    parser.add_argument("--panel", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.api:
        print(json.dumps(api_run(args.api, json.loads(args.prompt_list), args.threads, args.panel)))
        return
    counts = dict(zip(args.sizes, args.prompts + args.prompts[-1:] * len(args.sizes)))
    folder = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    env = {**os.environ, "DIFFUGTS_HOME": str(folder / "home"), "DIFFUGTS_TOKEN": secrets.token_hex(16)}
    results: dict = {"threads": args.threads, "cpus": os.cpu_count(), "load_start": _load(), "sizes": {}}
    try:
        for size, count in counts.items():
            results["sizes"][size] = measure_size(size, args.before.resolve() / "DiffuGTSSlicer", count,
                                                  args.threads, env, folder / size)
            if args.json:
                args.json.write_text(json.dumps(results, indent=2))
    finally:
        results["load_end"] = _load()
        subprocess.run(["rm", "-rf", str(folder)], check=False)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
