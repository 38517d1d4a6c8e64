"""Sliding-window encode and decode with Gaussian overlap blending (MONAI's sliding_window_inference).

Only one patch (and its activations) is on the compute device at a time; the blended output is
accumulated on the CPU, so peak memory grows with the volume only through the output itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..progress import ProgressCallback, silent


def _fits(shape: Sequence[int], roi: Sequence[int]) -> bool:
    return all(s <= r for s, r in zip(shape, roi))


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

    roi = [min(r, s) for r, s in zip(roi, shape)]
    scan = [max(1, int(r * (1 - overlap))) if r < s else 1 for r, s in zip(roi, shape)]
    return len(dense_patch_slices(list(shape), roi, scan))


def encode_volume(backbone, x: torch.Tensor, *, roi: Sequence[int] | None = None, overlap: float = 0.25,
                  progress: ProgressCallback = silent) -> torch.Tensor:
    """Encode an image ``[1, 1, X, Y, Z]`` (each size a multiple of the latent factor) to its latent."""
    from monai.inferers import sliding_window_inference

    roi = list(roi or backbone.config.patch_size)
    if _fits(x.shape[2:], roi):
        z = backbone.encode(x)
        progress("encode", 1.0)
        return z.cpu()
    predictor = _counting(backbone.encode, "encode", _patch_count(x.shape[2:], roi, overlap), progress)
    with torch.no_grad():
        return sliding_window_inference(x.cpu(), roi, 1, predictor, overlap=overlap, mode="gaussian",
                                        sw_device=backbone.device, device=torch.device("cpu"))


def decode_latent(backbone, z: torch.Tensor, *, roi: Sequence[int] | None = None, overlap: float = 0.25,
                  progress: ProgressCallback = silent, stage: str = "decode") -> torch.Tensor:
    """Decode a latent ``[1, C, x, y, z]`` to an image, in overlapping latent patches."""
    from monai.inferers import sliding_window_inference

    factor = backbone.config.latent_downsample
    roi = [r // factor for r in (roi or backbone.config.patch_size)]
    if _fits(z.shape[2:], roi):
        x = backbone.decode(z)
        progress(stage, 1.0)
        return x.cpu()
    predictor = _counting(backbone.decode, stage, _patch_count(z.shape[2:], roi, overlap), progress)
    with torch.no_grad():
        return sliding_window_inference(z.cpu(), roi, 1, predictor, overlap=overlap, mode="gaussian",
                                        sw_device=backbone.device, device=torch.device("cpu"))
