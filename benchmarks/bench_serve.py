"""Warm server against a cold command: a second prompt on a volume `diffugts serve` has cached, against a fresh
`diffugts segment` process (start, imports, model load, read, segment, write) on the same volume, as a ratio.

    python benchmarks/bench_serve.py [--size 128x128x64] [--threads 2] [--repeats 2] [--json OUT]

One kidney-tumor CT phantom (diffugts.data.phantom, random scanner grid) of ``size`` is written to a temporary
.nii.gz. In this one run, with the same DIFFUGTS_HOME (text-embedding cache) throughout: (1) the cold baseline,
``repeats`` fresh `diffugts segment --fast` processes, each with a prompt of NEW_PROMPTS; (2) a real `diffugts serve`
process on a free loopback port with a token; the volume is uploaded once, the first prompt is run on it
(the volume's encoding is cached), then the same new prompts on the same volume id through the API (submit,
follow, download every file: what a client waits for) and one more new prompt through a fresh
`diffugts segment --server` process (which uploads the file again: the cache is keyed by the voxels).
Load averages (os.getloadavg) are taken before each measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIRST_PROMPT = "kidney tumor"
# each measured run gets a prompt not seen before on this volume: a repeated prompt would also reuse its sample
NEW_PROMPTS = ("liver tumor", "lung tumor", "spleen tumor", "pancreas tumor", "bladder tumor")


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _phantom(folder: Path, size: tuple[int, int, int]) -> Path:
    from diffugts.data.phantom import make_phantom
    from diffugts.io import write_volume

    return write_volume(make_phantom(FIRST_PROMPT, "CT", size, seed=0).image, folder / "ct.nii.gz")


def _outcome(out: Path, seconds: float, load: float) -> dict:
    """A run's wall seconds and load average before it, with its report's segmenter seconds and cache counters."""
    report = json.loads((out / "report.json").read_text())
    return {"seconds": seconds, "load": load, "segment_s": report["timings_s"]["total"], "cache": report["cache"]}


def _command(arguments: list[str], out: Path, env: dict[str, str]) -> dict:
    """A fresh `diffugts segment ... --out OUT` process, timed from start to exit."""
    load, start = _load(), time.perf_counter()
    subprocess.run([sys.executable, "-m", "diffugts", "--progress", "none", *arguments, "--out", str(out)],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    return _outcome(out, time.perf_counter() - start, load)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_server(threads: int, env: dict[str, str]) -> tuple[subprocess.Popen, str, float]:
    """A `diffugts serve` process, once it answers /health; returns it, its URL and its start-up seconds."""
    from diffugts.client import Client
    from diffugts.errors import DiffuGTSError

    port = _free_port()
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "diffugts", "serve", "--port", str(port), "--device", "cpu",
                                "--threads", str(threads)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            Client(url).health()
            return process, url, time.perf_counter() - start
        except DiffuGTSError:
            if process.poll() is not None or time.perf_counter() - start > 300:
                raise RuntimeError("diffugts serve did not start") from None
            time.sleep(0.1)


def _api_job(client, volume_id: str, prompt: str, out: Path) -> dict:
    """One job on an uploaded volume through the API: submit, follow, download every file."""
    load, start = _load(), time.perf_counter()
    job_id = client.submit(volume_id, {"prompts": [prompt], "quality": "fast"})["id"]
    client.wait(job_id)
    client.download(job_id, out)
    return _outcome(out, time.perf_counter() - start, load)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="128x128x64")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, choices=range(1, len(NEW_PROMPTS)))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from diffugts.client import Client

    size = tuple(int(v) for v in args.size.split("x"))
    folder = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    token = secrets.token_hex(16)
    env = {**os.environ, "DIFFUGTS_HOME": str(folder / "home"), "DIFFUGTS_TOKEN": token}
    image = _phantom(folder, size)
    results: dict = {"size": args.size, "threads": args.threads, "cpus": os.cpu_count(), "load_start": _load()}

    def segment(n: int, *more: str) -> list[str]:
        return ["segment", str(image), "--prompt", NEW_PROMPTS[n], "--fast", *more]

    results["cold_cli"] = [_command(segment(n, "--device", "cpu", "--threads", str(args.threads)),
                                    folder / f"cold{n}", env) for n in range(args.repeats)]

    process, url, results["server_start_s"] = _start_server(args.threads, env)
    try:
        client = Client(url, token)
        load, start = _load(), time.perf_counter()
        volume_id = client.upload(image)
        results["upload"] = {"seconds": time.perf_counter() - start, "load": load}
        results["first_prompt"] = _api_job(client, volume_id, FIRST_PROMPT, folder / "first")
        results["second_prompt_api"] = [_api_job(client, volume_id, NEW_PROMPTS[n], folder / f"api{n}")
                                        for n in range(args.repeats)]
        results["second_prompt_cli"] = _command(segment(args.repeats, "--server", url), folder / "cli", env)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)
        shutil.rmtree(folder, ignore_errors=True)
    results["load_end"] = _load()

    cold = statistics.median(run["seconds"] for run in results["cold_cli"])
    warm = statistics.median(run["seconds"] for run in results["second_prompt_api"])
    results["ratio_cold_over_warm_api"] = cold / warm
    results["ratio_cold_over_warm_cli"] = cold / results["second_prompt_cli"]["seconds"]
    print(_table(results, cold, warm))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def _table(results: dict, cold: float, warm: float) -> str:
    server_runs = [results["first_prompt"], *results["second_prompt_api"], results["second_prompt_cli"]]
    for before, run in zip(server_runs, server_runs[1:]):  # the server's counters add up over its jobs
        run["sample_reused"] = run["cache"]["sample_hits"] > before["cache"]["sample_hits"]
        run["volume_reused"] = run["cache"]["volume_hits"] > before["cache"]["volume_hits"]
    rows = [("cold `diffugts segment` (fresh process: start, imports, model load, read, segment, write)",
             results["cold_cli"]),
            ("warm server, first prompt on a new volume (API: submit, follow, download every file)",
             [results["first_prompt"]]),
            ("warm server, a new prompt on the cached volume (API)", results["second_prompt_api"]),
            ("warm server, a new prompt via `diffugts segment --server` (fresh client process, re-upload)",
             [results["second_prompt_cli"]])]
    lines = ["| run | seconds (each) | median s | cold / this | segmenter s (each) | volume / sample reused | "
             "load avg before |", "| --- | --- | ---: | ---: | --- | --- | --- |"]
    for name, runs in rows:
        median = statistics.median(r["seconds"] for r in runs)
        seconds = ", ".join(f"{r['seconds']:.2f}" for r in runs)
        segmenter = ", ".join(f"{r['segment_s']:.2f}" for r in runs)
        reused = ", ".join(f"{'yes' if r.get('volume_reused') else 'no'}/{'yes' if r.get('sample_reused') else 'no'}"
                           for r in runs)
        loads = ", ".join(f"{r['load']:.2f}" for r in runs)
        lines.append(f"| {name} | {seconds} | {median:.2f} | {cold / median:.1f} | {segmenter} | {reused} | {loads} |")
    lines.append(f"\nserver start (to /health): {results['server_start_s']:.1f} s; upload "
                 f"{results['upload']['seconds']:.2f} s; load average {results['load_start']} at start, "
                 f"{results['load_end']} at end; {results['threads']} torch threads, {results['cpus']} CPUs; "
                 f"volume {results['size']}; cold / warm new prompt (API, medians) = {cold / warm:.1f}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
