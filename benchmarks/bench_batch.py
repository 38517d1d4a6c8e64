"""Batch throughput: volumes per hour of `diffugts batch` on CPU, against a loop of cold `diffugts segment` runs.

    python benchmarks/bench_batch.py [--count 6] [--size 96x96x64] [--quality fast] [--before DIR] [--json OUT]

Writes ``count`` kidney-tumor CT phantoms (diffugts.data.phantom, random scanner grids) of ``size`` to a
temporary folder, then, in this one run: (1) the baseline, one `diffugts segment` process per volume (each
loads the models: what a shell loop does); (2) `diffugts batch` with one worker using every core; (3)
`diffugts batch --workers 2`, one thread each; (4) `diffugts batch --outputs all` (every file `segment`
writes); (5) with ``--before DIR`` (another version's DiffuGTSSlicer folder, e.g. from ``git archive``), that
version's `diffugts batch`, one worker. Every run starts from an empty output folder. The table gives seconds,
volumes per hour, the speed-up over the baseline and the bytes written per case, with the machine's load average.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPT = "kidney tumor"


def _phantoms(folder: Path, count: int, size: tuple[int, int, int]) -> list[Path]:
    from diffugts.data.phantom import make_phantom
    from diffugts.io import write_volume

    folder.mkdir(parents=True)
    return [write_volume(make_phantom(PROMPT, "CT", size, seed=n).image, folder / f"case{n}.nii.gz")
            for n in range(count)]


def _bytes_per_case(folder: Path, count: int) -> int:
    """Bytes of every file under ``folder`` (one sub-folder per case, or per volume for the loop) per case."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) // count


def _timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "diffugts", "--progress", "none", *command], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--size", default="96x96x64")
    parser.add_argument("--quality", default="fast")
    parser.add_argument("--before", type=Path, help="folder with another version's DiffuGTSSlicer folder")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    threads = str(os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as temp:
        temp = Path(temp)
        env = {**os.environ, "DIFFUGTS_HOME": str(temp / "home")}
        images = _phantoms(temp / "in", args.count, size)
        request = ["--prompt", PROMPT, "--quality", args.quality]
        _timed(["segment", str(images[0]), *request, "--out", str(temp / "warm")], env)  # text cache, file cache
        runs, disk = {}, {}
        load = [os.getloadavg()[0]]
        name = "segment, one process per volume (baseline)"
        runs[name] = sum(
            _timed(["segment", str(image), *request, "--threads", threads, "--out", str(temp / "loop" / image.name)],
                   env) for image in images)
        disk[name] = _bytes_per_case(temp / "loop", args.count)
        batch = ["batch", "--input", str(temp / "in"), *request]
        variants = {f"batch, 1 worker x {threads} threads": (["--threads", threads], env),
                    "batch, 2 workers x 1 thread": (["--workers", "2"], env),
                    f"batch --outputs all, 1 worker x {threads} threads": (["--threads", threads, "--outputs", "all"],
                                                                           env)}
        if args.before:
            variants[f"batch of the --before version, 1 worker x {threads} threads"] = (
                ["--threads", threads], {**env, "PYTHONPATH": str(args.before.resolve() / "DiffuGTSSlicer")})
        for number, (name, (options, run_env)) in enumerate(variants.items()):
            load.append(os.getloadavg()[0])
            runs[name] = _timed([*batch, *options, "--out", str(temp / f"b{number}")], run_env)
            disk[name] = _bytes_per_case(temp / f"b{number}", args.count)
        load.append(os.getloadavg()[0])
    baseline = next(iter(runs.values()))
    rows = [{"run": name, "seconds": round(s, 1), "volumes_per_hour": round(3600 * args.count / s),
             "speedup": round(baseline / s, 2), "mb_per_case": round(disk[name] / 1e6, 2)} for name, s in runs.items()]
    print(f"{args.count} volumes of {args.size}, --quality {args.quality}, {threads} cores, "
          f"load average {min(load):.1f}-{max(load):.1f}")
    print("| run | seconds | volumes/hour | vs baseline | MB per case |\n|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['run']} | {row['seconds']} | {row['volumes_per_hour']} | {row['speedup']}x | "
              f"{row['mb_per_case']} |")
    if args.json:
        args.json.write_text(json.dumps({"count": args.count, "size": args.size, "quality": args.quality,
                                         "load": load, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
