"""Sliding-window encode and decode with Gaussian overlap blending (MONAI's sliding_window_inference).

Only one patch (and its activations) is on the compute device at a time; the blended output is
accumulated on the CPU, so peak memory grows with the volume only through the output itself.

The window bounds memory, so a volume with no more voxels than the window goes through in one call
(no seams, no overlap computed twice), and otherwise the window is clipped to the volume along any axis
where the volume is smaller: MONAI would pad the volume with zeros up to the window, and the padding
would enter the networks' group and instance norms. Measured on the 256x256x128 benchmark CT
(112x112x160 on the model grid, a 28x28x40 latent, 32^3 latent windows): the zero-padded windows
reconstructed the image 15% worse (0.084 against 0.073 mean absolute error) and decoded 2.1x the
latent's voxels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ..progress import ProgressCallback, silent


def window(shape: Sequence[int], roi: Sequence[int]) -> list[int]:
    """The sliding window for a volume of ``shape``: the whole volume when it has no more voxels than ``roi``,
    else ``roi`` no larger than the volume along any axis."""
    if math.prod(shape) <= math.prod(roi):
        return [int(s) for s in shape]
    return [min(int(r), int(s)) for r, s in zip(roi, shape)]


def _counting(predictor, stage: str, total: int, progress: ProgressCallback):
    state = {"done": 0}

    def wrapped(patch: torch.Tensor) -> torch.Tensor:
        out = predictor(patch)
        state["done"] += patch.shape[0]
        progress(stage, min(1.0, state["done"] / max(total, 1)))
        return out

    return wrapped


def _patch_count(shape: Sequence[int], roi: Sequence[int], overlap: float) -> int:
    from monai.data.utils import dense_patch_slices

    roi = window(shape, roi)
    scan = [max(1, int(r * (1 - overlap))) if r < s else 1 for r, s in zip(roi, shape)]
    return len(dense_patch_slices(list(shape), roi, scan))


def run_windows(predictor: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, roi: Sequence[int], *,
                device: torch.device, overlap: float = 0.25, progress: ProgressCallback = silent,
                stage: str = "windows") -> torch.Tensor:
    """``predictor`` over ``x`` ``[1, C, ...]`` in Gaussian-blended windows of ``roi`` (clipped to ``x``), on the
    CPU; a volume within one window goes through in one call. The output may be a multiple of the input's size."""
    from monai.inferers import sliding_window_inference

    roi = window(x.shape[2:], roi)
    with torch.no_grad():
        if roi == list(x.shape[2:]):
            out = predictor(x.to(device))
            progress(stage, 1.0)
            return out.cpu()
        counted = _counting(predictor, stage, _patch_count(x.shape[2:], roi, overlap), progress)
        return sliding_window_inference(x.cpu(), roi, 1, counted, overlap=overlap, mode="gaussian",
                                        sw_device=device, device=torch.device("cpu"))


def encode_volume(backbone, x: torch.Tensor, *, roi: Sequence[int] | None = None, overlap: float = 0.25,
                  progress: ProgressCallback = silent) -> torch.Tensor:
    """Encode an image ``[1, 1, X, Y, Z]`` (each size a multiple of the latent factor) to its latent."""
    return run_windows(backbone.encode, x, roi or backbone.config.patch_size, device=backbone.device,
                       overlap=overlap, progress=progress, stage="encode")


def decode_latent(backbone, z: torch.Tensor, *, roi: Sequence[int] | None = None, overlap: float = 0.25,
                  progress: ProgressCallback = silent, stage: str = "decode") -> torch.Tensor:
    """Decode a latent ``[1, C, x, y, z]`` to an image, in overlapping latent patches."""
    factor = backbone.config.latent_downsample
    roi = [r // factor for r in (roi or backbone.config.patch_size)]
    return run_windows(backbone.decode, z, roi, device=backbone.device, overlap=overlap, progress=progress,
                       stage=stage)
