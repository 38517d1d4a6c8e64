"""Phantom generation speed: one 128^3 case per category against baselines run in the same process.

Run: python benchmarks/bench_phantom.py [--size 128] [--repeats 5]
Single core (thread pools pinned to 1). For every category, ``repeats`` phantoms with different
seeds (so different spacing, orientation and modality) are timed; the table gives the median and
the slowest, and their ratios to two baselines of the same voxel count: filling an array with
NumPy Gaussian noise, and reading a .nii.gz of a phantom with SimpleITK.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402

from diffugts.data.categories import PHANTOM_CATEGORIES  # noqa: E402
from diffugts.data.phantom import make_phantom  # noqa: E402
from diffugts.io import write_volume  # noqa: E402

TARGET_S = 1.0


def timed(function: Callable[[], object], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n = args.size
    make_phantom("liver tumor", size=16, seed=0)  # warm-up: imports, first-call overheads

    rng = np.random.default_rng(0)
    noise_s = statistics.median(timed(lambda: rng.standard_normal((n, n, n), dtype=np.float32), args.repeats))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "phantom.nii.gz"
        write_volume(make_phantom("liver tumor", "CT", n, seed=0).image, path)
        read_s = statistics.median(timed(lambda: sitk.GetArrayFromImage(sitk.ReadImage(str(path))), args.repeats))

    print(f"{n}^3 voxels, 1 thread; baselines: NumPy noise fill {noise_s:.3f} s, SimpleITK .nii.gz read "
          f"{read_s:.3f} s\n")
    print("| category | median s | slowest s | median / noise fill | median / NIfTI read | under 1 s |")
    print("| --- | ---: | ---: | ---: | ---: | :---: |")
    everything = []
    for category in PHANTOM_CATEGORIES:
        seeds = iter(range(1000, 1000 + args.repeats))
        times = timed(lambda: make_phantom(category, size=n, seed=next(seeds)), args.repeats)
        everything += times
        median = statistics.median(times)
        print(f"| {category} | {median:.3f} | {max(times):.3f} | {median / noise_s:.1f} | {median / read_s:.2f} | "
              f"{'yes' if max(times) < TARGET_S else 'NO'} |")
    median = statistics.median(everything)
    print(f"| **all** | {median:.3f} | {max(everything):.3f} | {median / noise_s:.1f} | {median / read_s:.2f} | "
          f"{'yes' if max(everything) < TARGET_S else 'NO'} |")


if __name__ == "__main__":
    main()
