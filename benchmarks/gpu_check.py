"""MAISI at full size with random weights: seconds and peak GPU memory of each pass (VAE encode of the whole
image in windows, one UNet pass on the whole latent, VAE decode) for CTs of 256x256x128 and 512x512x300 in
float16 and bfloat16, and a check that a checkpoint saved the way NVIDIA's MAISI scripts save it (the UNet as a
dict with ``unet_state_dict`` and ``scale_factor``) loads through our MAISI path with the same weights.

    bash benchmarks/gpu_check.sh                                  # on a machine with a CUDA GPU
    python benchmarks/gpu_check.py --device cpu --sizes 48x48x32 --dtypes float32 --spacing 4x4x4   # smoke run

Timings do not depend on weight values, so random weights time what the real ones would. One JSON object per
line on stdout; a case that fails (say float16 in a layer that needs float32) is reported, not fatal.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from diffugts.backbone import build_backbone
from diffugts.backbone.grid import to_model_grid
from diffugts.backbone.sliding import decode_latent, encode_volume
from diffugts.io import Volume

BACKBONE = "maisi-rflow-v2"
SPACINGS = {(256, 256, 128): (0.8, 0.8, 2.5), (512, 512, 300): (0.7, 0.7, 1.5)}  # as benchmarks/README.md


def checkpoint_loads(device: torch.device) -> dict:
    """Random MAISI v2 networks saved in NVIDIA's layout and file format, loaded back with build_backbone."""
    reference = build_backbone(BACKBONE, random_init=True, device=device)
    with tempfile.TemporaryDirectory() as folder:
        models = Path(folder) / "models"
        models.mkdir()
        torch.save(reference.autoencoder.state_dict(), models / "autoencoder_v1.pt")
        torch.save({"unet_state_dict": reference.unet.state_dict(), "scale_factor": torch.tensor(0.75)},
                   models / "diff_unet_3d_rflow-ct.pt")
        loaded = build_backbone(BACKBONE, weights=folder, device=device)
    same = all(torch.equal(a, b) for a, b in zip(reference.unet.state_dict().values(),
                                                 loaded.unet.state_dict().values()))
    same &= all(torch.equal(a, b) for a, b in zip(reference.autoencoder.state_dict().values(),
                                                  loaded.autoencoder.state_dict().values()))
    return {"check": "nvidia checkpoint layout", "weights_equal": bool(same), "scale_factor": loaded.scale_factor,
            "ok": bool(same) and loaded.scale_factor == 0.75}


def timed(device: torch.device, call):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    result = call()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return result, round(time.perf_counter() - start, 3)


def passes(backbone, size: tuple[int, int, int], spacing: tuple[float, ...], dtype: torch.dtype) -> dict:
    """Seconds and peak GPU memory of encode, one whole-latent UNet pass and decode for a random CT."""
    device = backbone.device
    array = np.random.default_rng(0).integers(-1000, 1500, size[::-1]).astype(np.int16)
    volume = Volume(array, spacing, (0.0, 0.0, 0.0), np.eye(3), modality="CT")
    image, _, grid = to_model_grid(volume, backbone.config)
    row = {"size": "x".join(map(str, size)), "dtype": str(dtype).removeprefix("torch."),
           "model_grid": "x".join(map(str, grid.padded))}
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
    with torch.no_grad(), autocast:
        latent, row["encode_s"] = timed(device, lambda: encode_volume(backbone, image.to(device)))
        cond = grid.conditioning()
        _, row["unet_pass_s"] = timed(device, lambda: backbone.predict(latent, 500, cond))
        _, row["decode_s"] = timed(device, lambda: decode_latent(backbone, latent))
    if device.type == "cuda":
        row["peak_gpu_gb"] = round(torch.cuda.max_memory_allocated(device) / 1024**3, 2)
    row["latent"] = "x".join(map(str, latent.shape[2:]))
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sizes", nargs="+", default=["256x256x128", "512x512x300"])
    parser.add_argument("--spacing", help="override the spacing (mm) for every size, e.g. 4x4x4")
    parser.add_argument("--dtypes", nargs="+", default=["float16", "bfloat16"])
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA device"}))
        return 2
    torch.manual_seed(0)
    failures = 0
    check = checkpoint_loads(device)
    print(json.dumps(check), flush=True)
    failures += not check["ok"]
    backbone = build_backbone(BACKBONE, random_init=True, device=device)
    for text in args.sizes:
        size = tuple(int(n) for n in text.split("x"))
        spacing = tuple(float(s) for s in args.spacing.split("x")) if args.spacing else SPACINGS[size]
        for dtype in args.dtypes:
            try:
                print(json.dumps(passes(backbone, size, spacing, getattr(torch, dtype))), flush=True)
            except Exception as error:  # noqa: BLE001 - one failing case is a result, not the end of the check
                failures += 1
                print(json.dumps({"size": text, "dtype": dtype, "error": f"{type(error).__name__}: {error}"[:500]}),
                      flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
