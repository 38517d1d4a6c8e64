"""Backbone speed and memory on CPU: encode and inpaint with the demo backbone, against baselines.

    python benchmarks/bench_backbone.py [--threads 1] [--markdown]

Each case runs in a fresh process (peak RSS is that process's own). Baselines run in the same
process as what they are compared with: a plain 3x3x3 convolution (1 -> 16 channels, MONAI's
Convolution) over the same input, and, for the size of the demo backbone, the published MAISI v2
networks (random weights: the cost does not depend on their values) on the same small input.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

CASES = ["maisi_vs_demo", "inpaint_128", "inpaint_256x256x128", "encode_volume_512x512x300"]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _timed(fn, repeats: int = 1) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _demo():
    from diffugts.backbone import build_backbone
    from diffugts.errors import DiffuGTSError

    try:
        return build_backbone("demo-ct"), "shipped weights"
    except DiffuGTSError:
        return build_backbone("demo-ct", random_init=True), "random weights (none shipped)"


def case_maisi_vs_demo() -> dict:
    import torch

    from diffugts.backbone import build_backbone

    x = torch.rand(1, 1, 64, 64, 64)
    out = {}
    for name in ("demo-ct", "maisi-rflow-v2"):
        backbone = build_backbone(name, random_init=True)
        cond = backbone.default_conditioning("ct")
        z = backbone.encode(x)
        z32 = torch.randn(1, 4, 32, 32, 32)  # the latent of a 128^3 image
        out[name] = {"encode_64_s": _timed(lambda: backbone.encode(x), 2),
                     "unet_16_s": _timed(lambda: backbone.predict(z, 500.0, cond), 2),
                     "unet_32_s": _timed(lambda: backbone.predict(z32, 500.0, cond), 1),
                     "decode_16_s": _timed(lambda: backbone.decode(z), 1)}
        del backbone
    ratios = {k: out["maisi-rflow-v2"][k] / out["demo-ct"][k] for k in out["demo-ct"]}
    return {"case": "maisi_vs_demo", "timings": out, "maisi_over_demo": ratios, "peak_mb": _peak_mb()}


def case_inpaint(size) -> dict:
    import torch

    from diffugts.backbone.inpaint import inpaint
    from diffugts.backbone.sliding import encode_volume
    from monai.networks.blocks import Convolution

    backbone, weights = _demo()
    x = torch.rand(1, 1, *size)
    conv = Convolution(3, 1, 16, kernel_size=3)
    conv.eval()
    with torch.no_grad():
        baseline = _timed(lambda: conv(x), 2)
    rss_before = _peak_mb()
    mask = torch.zeros_like(x)
    c = [s // 2 for s in size]
    mask[..., c[0] - 12:c[0] + 12, c[1] - 12:c[1] + 12, c[2] - 12:c[2] + 12] = 1
    encode = _timed(lambda: encode_volume(backbone, x))
    start = time.perf_counter()
    result = inpaint(backbone, x, mask, seeds=[0])
    total = time.perf_counter() - start
    steps = backbone.config.inference
    return {"case": f"inpaint_{'x'.join(map(str, size))}", "weights": weights, "conv_baseline_s": baseline,
            "encode_s": encode, "inpaint_total_s": total, "encode_ratio": encode / baseline,
            "inpaint_ratio": total / baseline, "peak_mb": _peak_mb(), "peak_mb_before": rss_before,
            "steps": steps, "shape": list(result.pseudo_healthy[0].shape)}


def case_encode_volume_512() -> dict:
    import numpy as np

    from diffugts.backbone.grid import to_model_grid
    from diffugts.backbone.sliding import encode_volume
    from diffugts.io import Volume

    backbone, weights = _demo()
    rng = np.random.default_rng(0)
    array = rng.integers(-1000, 1500, size=(300, 512, 512), dtype=np.int16)
    volume = Volume(array, (0.7, 0.7, 1.0), (0.0, 0.0, 0.0), np.eye(3), modality="CT")
    start = time.perf_counter()
    tensor, _, grid = to_model_grid(volume, backbone.config)
    prepare = time.perf_counter() - start
    z = encode_volume(backbone, tensor)
    return {"case": "encode_volume_512x512x300", "weights": weights, "prepare_s": prepare,
            "total_s": time.perf_counter() - start, "model_grid": list(grid.padded), "latent": list(z.shape),
            "peak_mb": _peak_mb()}


def run_case(name: str, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    if name == "maisi_vs_demo":
        return case_maisi_vs_demo()
    if name == "inpaint_128":
        return case_inpaint((128, 128, 128))
    if name == "inpaint_256x256x128":
        return case_inpaint((256, 256, 128))
    if name == "encode_volume_512x512x300":
        return case_encode_volume_512()
    raise SystemExit(f"unknown case {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--case", choices=CASES, help="run one case in this process (used internally)")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=CASES)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.threads)))
        return 0
    results = []
    for name in args.cases:
        done = subprocess.run([sys.executable, __file__, "--case", name, "--threads", str(args.threads)],
                              capture_output=True, text=True, check=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
