"""Compute cost of the peers' networks at their published sizes, per volume, on this CPU.

    from peers import VOLUMES, peer_costs
    rows = peer_costs((256, 256, 128), (0.8, 0.8, 2.5), threads=2)

Timing needs no trained weights: every network is built with random weights (a pass costs the same
whatever the weights are). One pass of each network is measured at its published input size (one
sliding window, or one 2D slice) and multiplied by the number of passes the published inference
makes on the volume; windows are counted with MONAI's own sliding-window helpers on the grid the
peer resamples to. A pass does not depend on the volume, so it is measured once per process and
reused for every volume.

Peers (published configurations, checked against their code):
- VISTA3D (MONAI model-zoo bundle `vista3d`, configs/inference.json): `vista3d132`, volume
  resampled to 1.5 mm, 128^3 windows, overlap 0.3, one automatic pass with the 117 "everything"
  classes as class prompts.
- ZePT (Yankai96/ZePT test.py, models/ZePT_pred.py): SwinUNETR, feature_size 48, 32 output
  channels (25 organs + 7 tumors), 1.5 mm, 96^3 windows, overlap 0.5. ZePT's text/query modules
  are not timed, so this is a lower bound.
- MedSegDiff (MedicineToken/MedSegDiff, formerly KidsWithTokens, README sampling command and
  guided_diffusion/script_util.py): 2D UNet, image_size 256, num_channels 128, channel_mult
  (1, 1, 2, 2, 4, 4), num_res_blocks 2, one attention head at resolution 16 and in the middle block,
  no scale-shift norm, 2 output channels; 1000 diffusion steps, 5-sample ensemble, per axial slice.
  Built with MONAI's DiffusionModelUNet (image + noisy mask in); MedSegDiff's extra conditioning
  encoder (highway branch) is not included, so this too is a lower bound.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

VOLUMES: dict[str, tuple[tuple[int, int, int], tuple[float, float, float]]] = {
    "128x128x128": ((128, 128, 128), (1.5, 1.5, 1.5)),
    "256x256x128": ((256, 256, 128), (0.8, 0.8, 2.5)),
    "512x512x300": ((512, 512, 300), (0.7, 0.7, 1.5)),
}

VISTA3D_EXCLUDED = {2, 16, 18, 20, 21, 23, 24, 25, 26, 27, 128, 129, 130, 131, 132}
VISTA3D_CLASSES = [c for c in range(1, 133) if c not in VISTA3D_EXCLUDED]  # the bundle's everything_labels
ZEPT_CLASSES = 32  # 25 organs + 7 tumors
MEDSEGDIFF_STEPS = 1000
MEDSEGDIFF_ENSEMBLE = 5
_STATUS = Path("/proc/self/status")


@dataclass(frozen=True)
class PassTiming:
    """Seconds per network pass, how many passes were timed, and peak RSS growth (MB) of build + passes."""

    seconds: float
    timed: int
    peak_rss_mb: float | None


def _status_mb(key: str) -> float | None:
    if not _STATUS.exists():
        return None
    found = re.search(rf"{key}:\s+(\d+) kB", _STATUS.read_text())
    return int(found.group(1)) / 1024.0 if found else None


def _reset_peak_rss() -> float | None:
    """Reset the kernel's peak-RSS mark (Linux clear_refs) and return the current RSS in MB."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
        return _status_mb("VmRSS")
    return None


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def time_pass(build: Callable[[], Callable[[], object]], repeats: int) -> PassTiming:
    """Build a network pass, run it once as warm-up, then time `repeats` passes (0: time the first pass)."""
    import torch

    rss_start = _reset_peak_rss()
    with torch.inference_mode():
        run = build()
        start = time.perf_counter()
        run()
        seconds = [time.perf_counter() - start]
        if repeats > 0:
            seconds = []
            for _ in range(repeats):
                start = time.perf_counter()
                run()
                seconds.append(time.perf_counter() - start)
    peak = _status_mb("VmHWM")
    rss = None if rss_start is None or peak is None else peak - rss_start
    return PassTiming(min(seconds), len(seconds), rss)


def resampled_shape(shape_xyz: tuple[int, int, int], spacing_mm: tuple[float, float, float],
                    target_mm: float) -> tuple[int, int, int]:
    """Grid shape after MONAI's Spacing to `target_mm` isotropic (the peers' preprocessing)."""
    import numpy as np
    from monai.data.utils import compute_shape_offset

    shape, _ = compute_shape_offset(shape_xyz, np.diag([*spacing_mm, 1.0]), np.diag([target_mm] * 3 + [1.0]))
    return tuple(int(s) for s in shape)


def window_count(grid: tuple[int, ...], roi: int, overlap: float) -> int:
    """Windows MONAI's sliding_window_inference runs on `grid` (padded up to the ROI where smaller)."""
    from monai.data.utils import dense_patch_slices
    from monai.inferers.utils import _get_scan_interval

    roi_size = (roi,) * len(grid)
    image_size = tuple(max(g, roi) for g in grid)
    interval = _get_scan_interval(image_size, roi_size, len(grid), (overlap,) * len(grid))
    return len(dense_patch_slices(image_size, roi_size, interval))


@functools.lru_cache(maxsize=None)
def vista3d_pass(threads: int, repeats: int) -> PassTiming:
    """One VISTA3D window (128^3) with the 117 everything classes as class prompts."""
    import torch
    from monai.networks.nets import vista3d132

    def build() -> Callable[[], object]:
        net = vista3d132().eval()
        x = torch.rand(1, 1, 128, 128, 128)
        classes = torch.tensor(VISTA3D_CLASSES).unsqueeze(-1)
        return lambda: net(x, class_vector=classes, transpose=True)

    with _torch_threads(threads):
        return time_pass(build, repeats)


@functools.lru_cache(maxsize=None)
def swinunetr_pass(threads: int, repeats: int) -> PassTiming:
    """One ZePT-size SwinUNETR window (96^3, feature_size 48, 32 outputs)."""
    import torch
    from monai.networks.nets import SwinUNETR

    def build() -> Callable[[], object]:
        net = SwinUNETR(in_channels=1, out_channels=ZEPT_CLASSES, feature_size=48).eval()
        x = torch.rand(1, 1, 96, 96, 96)
        return lambda: net(x)

    with _torch_threads(threads):
        return time_pass(build, repeats)


def medsegdiff_unet():
    """MONAI DiffusionModelUNet shaped like MedSegDiff's published 256 x 256 model."""
    from monai.networks.nets import DiffusionModelUNet

    channels = tuple(128 * m for m in (1, 1, 2, 2, 4, 4))
    attention = (False, False, False, False, True, False)  # resolution 16 of 256
    heads = tuple(c if a else 0 for c, a in zip(channels, attention))[:-1] + (channels[-1],)  # one head; middle block
    return DiffusionModelUNet(spatial_dims=2, in_channels=2, out_channels=2, num_res_blocks=2, channels=channels,
                              attention_levels=attention, num_head_channels=heads, norm_num_groups=32)


@functools.lru_cache(maxsize=None)
def medsegdiff_pass(threads: int, repeats: int) -> PassTiming:
    """One MedSegDiff denoising step on one 256 x 256 slice."""
    import torch

    def build() -> Callable[[], object]:
        net = medsegdiff_unet().eval()
        x = torch.rand(1, 2, 256, 256)
        t = torch.tensor([500])
        return lambda: net(x, t)

    with _torch_threads(threads):
        return time_pass(build, repeats)


def _row(name: str, config: str, passes: int, timing: PassTiming, how: str, **extra: object) -> dict:
    return {"name": name, "config": config, "passes": passes, "s_per_pass": timing.seconds,
            "s_per_volume": timing.seconds * passes, "peak_rss_mb": timing.peak_rss_mb,
            "timed_passes": timing.timed, "how": how, **extra}


def _sliding(name: str, config: str, timing: PassTiming, shape_xyz, spacing_mm, roi: int, overlap: float,
             channels: int) -> dict:
    grid = resampled_shape(shape_xyz, spacing_mm, 1.5)
    windows = window_count(grid, roi, overlap)
    voxels = math.prod(max(g, roi) for g in grid)
    buffer_mb = (channels + 1) * voxels * 4 / 2**20  # float32 output + count map of the aggregation
    how = f"measured 1 window of {roi}^3 x {windows} windows on the {'x'.join(map(str, grid))} 1.5 mm grid"
    return _row(name, config, windows, timing, how, grid=list(grid), output_buffer_mb=buffer_mb)


def vista3d(shape_xyz, spacing_mm, threads: int = 2, repeats: int = 2) -> dict:
    """VISTA3D, automatic everything pass, as the MONAI bundle runs it."""
    config = (f"vista3d132 (random weights), 1.5 mm, 128^3 windows, overlap 0.3, "
              f"{len(VISTA3D_CLASSES)} class prompts")
    return _sliding("VISTA3D", config, vista3d_pass(threads, repeats), shape_xyz, spacing_mm, 128, 0.3,
                    len(VISTA3D_CLASSES))


def zept(shape_xyz, spacing_mm, threads: int = 2, repeats: int = 2) -> dict:
    """ZePT's SwinUNETR backbone (lower bound: query and text modules not timed)."""
    config = "SwinUNETR feature_size 48 (random weights), 1.5 mm, 96^3 windows, overlap 0.5; backbone only"
    return _sliding("ZePT (SwinUNETR backbone)", config, swinunetr_pass(threads, repeats), shape_xyz, spacing_mm,
                    96, 0.5, ZEPT_CLASSES)


def medsegdiff(shape_xyz, spacing_mm, threads: int = 2, repeats: int = 2) -> dict:
    """MedSegDiff: one 2D UNet pass per slice, diffusion step and ensemble member."""
    slices = int(shape_xyz[2])
    passes = slices * MEDSEGDIFF_STEPS * MEDSEGDIFF_ENSEMBLE
    config = ("2D diffusion UNet 256^2, 128 ch x (1,1,2,2,4,4), 2 res blocks, attention at 16 "
              f"(random weights); {MEDSEGDIFF_STEPS} steps x {MEDSEGDIFF_ENSEMBLE} samples per slice")
    how = f"measured 1 pass on a 256^2 slice x {slices} slices x {MEDSEGDIFF_STEPS} x {MEDSEGDIFF_ENSEMBLE}"
    return _row("MedSegDiff", config, passes, medsegdiff_pass(threads, repeats), how)


PEERS = (vista3d, zept, medsegdiff)


def peer_costs(shape_xyz: tuple[int, int, int], spacing_mm: tuple[float, float, float], threads: int = 2,
               repeats: int = 2) -> list[dict]:
    """Cost of every peer on a volume: passes, measured seconds per pass, estimated seconds per volume."""
    return [peer(tuple(shape_xyz), tuple(spacing_mm), threads, repeats) for peer in PEERS]
