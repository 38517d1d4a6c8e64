"""Volume I/O cost: diffugts read/write (validation, truncation check, atomic rename) against plain SimpleITK.

Run: python benchmarks/bench_io.py [--size 512 512 300] [--repeats 3]
Each measurement runs in a fresh process (so peak memory is real); the baseline and ours read the same
file. The table gives seconds, peak resident-memory growth, and the ratio ours / baseline.
"""

from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import SimpleITK as sitk

from diffugts.io import Volume, read_volume, write_volume

SPACING, ORIGIN = (0.7, 0.7, 1.25), (-180.0, -180.0, -400.0)


def ct_like(size_ijk: tuple[int, int, int]) -> np.ndarray:
    """Air outside an elliptic body, soft-tissue noise inside: compresses like a real CT."""
    i, j, k = size_ijk
    y, x = np.ogrid[-1:1:j * 1j, -1:1:i * 1j]
    body = (x / 0.8) ** 2 + (y / 0.6) ** 2 < 1
    array = np.full((k, j, i), -1000, np.int16)
    array[:, body] = 40 + np.random.default_rng(0).integers(-60, 60, size=(k, int(body.sum())), dtype=np.int16)
    return array


def _run(operation: str, library: str, path: str, size: tuple[int, int, int]) -> tuple[float, int]:
    """In a child process: seconds and peak RSS growth (bytes, sampled every 2 ms) of one operation."""
    array = ct_like(size) if operation == "write" else None
    process = psutil.Process()
    start_rss, peak, done = process.memory_info().rss, [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss - start_rss)
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.perf_counter()
    if operation == "read" and library == "sitk":
        sitk.GetArrayFromImage(sitk.ReadImage(path))
    elif operation == "read":
        read_volume(path)
    elif library == "sitk":
        image = sitk.GetImageFromArray(array)
        image.SetSpacing(SPACING)
        image.SetOrigin(ORIGIN)
        sitk.WriteImage(image, path, useCompression=True)
    else:
        write_volume(Volume(array, SPACING, ORIGIN, np.eye(3)), path)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    return seconds, peak[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=3, default=(512, 512, 300), metavar=("I", "J", "K"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    size = tuple(args.size)
    context = multiprocessing.get_context("spawn")
    rows = []
    with tempfile.TemporaryDirectory() as folder, context.Pool(1, maxtasksperchild=1) as pool:
        for suffix in (".nii.gz", ".nrrd"):
            source = str(Path(folder) / f"ct{suffix}")
            pool.apply(_run, ("write", "sitk", source, size))
            for operation in ("read", "write"):
                results = {}
                for library in ("sitk", "diffugts"):
                    target = source if operation == "read" else str(Path(folder) / f"{library}{suffix}")
                    runs = [pool.apply(_run, (operation, library, target, size)) for _ in range(args.repeats)]
                    results[library] = (min(r[0] for r in runs), max(r[1] for r in runs))
                rows.append((operation, suffix, results["sitk"], results["diffugts"]))
    label = "x".join(map(str, size))
    print(f"Volume {label} int16, best of {args.repeats} runs, each in a fresh process.\n")
    print("| operation | format | SimpleITK s | diffugts s | time ratio | SimpleITK peak MB | diffugts peak MB |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for operation, suffix, (bs, bm), (ms, mm) in rows:
        print(f"| {operation} | {suffix} | {bs:.2f} | {ms:.2f} | {ms / bs:.2f} | {bm / 2**20:.0f} | {mm / 2**20:.0f} |")


if __name__ == "__main__":
    main()
