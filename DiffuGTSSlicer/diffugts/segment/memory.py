"""Will it fit? The engine's one memory estimate, checked before any work on every call (segment, inpaint), so
a too-large volume gets advice instead of an OOM kill or a CUDA out-of-memory error."""

from __future__ import annotations

import numpy as np
import torch

from ..allocator import keeps_freed_memory
from ..backbone.config import BackboneConfig
from ..backbone.grid import size_multiple
from ..errors import DiffuGTSError
from ..io import Volume
from ..memory import budget_bytes, format_bytes

# Calibrated with benchmarks/bench_segment.py (peak RSS growth from the loaded models to the end of
# writing the outputs, demo backbone, CPU; see benchmarks/README.md "End to end"): the estimate is 1.06-1.22x
# the measured growth for 128^3, 256x256x128 and 512x512x300 CTs with the Fast and Best presets.
MODEL_GRID_COPIES = 12  # float32 model-grid tensors alive at the peak, besides the per-seed/per-prompt ones
INPUT_VOXEL_TRANSIENT_BYTES = 12  # short-lived bytes per input voxel (resampling back, label map, quick-look)
NETWORK_BYTES = 304 * 1024**2  # fixed: one sliding-window patch's activations, allocator and library slack
# A process that keeps its freed memory (allocator.keep_freed_memory, the server) grows more per job:
# measured 1.16x (512x512x300) to 1.6x (256x256x128) with Fast: the estimate is then 1.2-1.8x the growth
# (benchmarks/README.md, "Second prompt on a cached volume").
KEPT_MEMORY_FACTOR = 1.8
ADVICE = ("Crop it around the region of interest with --roi i0:i1,j0:j1,k0:k1, use --quality fast (one sample), "
          "give fewer prompts at a time, or ")


def model_grid_bytes(volume: Volume, config: BackboneConfig, *, prompts: int, seeds: int) -> int:
    """Estimated peak bytes of the work on the model grid (on the GPU when the models are there)."""
    canonical = np.array(volume.size) * np.array(volume.spacing) / np.array(config.spacing_mm)
    multiple = size_multiple(config)
    model_voxels = int(np.prod(np.ceil(np.maximum(canonical, 1) / multiple) * multiple))
    return model_voxels * 4 * (MODEL_GRID_COPIES + 3 * seeds + prompts * (2 + seeds)) + NETWORK_BYTES


def segmentation_bytes(volume: Volume, config: BackboneConfig, *, prompts: int, seeds: int) -> int:
    """Estimated peak bytes of process memory for segmenting ``volume`` with ``prompts`` prompts and ``seeds``
    samples (``prompts=0``: inpainting alone)."""
    per_input_voxel = (volume.array.itemsize + 4 * 3 + prompts * (4 * 3 + 1)  # pseudo, uncertainty; maps, mask
                       + INPUT_VOXEL_TRANSIENT_BYTES)
    need = model_grid_bytes(volume, config, prompts=prompts, seeds=seeds) + int(np.prod(volume.size)) * per_input_voxel
    return int(need * (KEPT_MEMORY_FACTOR if keeps_freed_memory() else 1.0))


def gpu_free_bytes(device: torch.device) -> int:
    """Memory a CUDA device can still give this process: free on the device plus what torch holds unused."""
    free, _total = torch.cuda.mem_get_info(device)
    return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))


def check_memory(volume: Volume, config: BackboneConfig, *, prompts: int, seeds: int,
                 device: torch.device | str | None = None, what: str = "segmenting") -> None:
    """Raise a DiffuGTSError with advice when the estimate exceeds the memory budget or, for models on a CUDA
    device, the device's free memory."""
    need, have = segmentation_bytes(volume, config, prompts=prompts, seeds=seeds), budget_bytes()
    if need > have:
        raise DiffuGTSError(f"{what} this volume needs about {format_bytes(need)}, more than the "
                            f"{format_bytes(have)} that can be used now", path=volume.source,
                            hint=ADVICE + "raise DIFFUGTS_MEMORY_BUDGET_GB.")
    device = torch.device(device) if device is not None else None
    if device is not None and device.type == "cuda":
        need, have = model_grid_bytes(volume, config, prompts=prompts, seeds=seeds), gpu_free_bytes(device)
        if need > have:
            raise DiffuGTSError(f"{what} this volume needs about {format_bytes(need)} of GPU memory, more than "
                                f"the {format_bytes(have)} free on {device}", path=volume.source,
                                hint=ADVICE + "free the GPU of other programs.")
