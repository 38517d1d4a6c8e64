"""Will a segmentation fit? Estimated before any work, so a too-large volume gets advice, not an OOM kill."""

from __future__ import annotations

import numpy as np

from ..backbone.config import BackboneConfig
from ..backbone.grid import size_multiple
from ..errors import DiffuGTSError
from ..io import Volume
from ..memory import budget_bytes, format_bytes

# Calibrated with benchmarks/bench_segment.py (peak RSS over the process's start, demo backbone, CPU):
MODEL_GRID_COPIES = 24  # float32 model-grid tensors alive at the peak, besides the per-seed/per-prompt ones
NETWORK_BYTES = 1.5 * 1024**3  # activations of one sliding-window patch through the VAE, UNet and refine head


def segmentation_bytes(volume: Volume, config: BackboneConfig, *, prompts: int, seeds: int) -> int:
    """Estimated peak bytes for segmenting ``volume`` with ``prompts`` prompts and ``seeds`` samples."""
    canonical = np.array(volume.size) * np.array(volume.spacing) / np.array(config.spacing_mm)
    multiple = size_multiple(config)
    model_voxels = int(np.prod(np.ceil(np.maximum(canonical, 1) / multiple) * multiple))
    per_model_voxel = 4 * (MODEL_GRID_COPIES + 3 * seeds + prompts * (2 + seeds))
    input_voxels = int(np.prod(volume.size))
    per_input_voxel = volume.array.itemsize + 4 * 3 + prompts * (4 * 3 + 1)  # pseudo, uncertainty; maps, mask
    return int(model_voxels * per_model_voxel + input_voxels * per_input_voxel + NETWORK_BYTES)


def check_memory(volume: Volume, config: BackboneConfig, *, prompts: int, seeds: int) -> None:
    """Raise a DiffuGTSError with advice when the estimate exceeds the memory budget."""
    need, have = segmentation_bytes(volume, config, prompts=prompts, seeds=seeds), budget_bytes()
    if need > have:
        raise DiffuGTSError(
            f"segmenting this volume needs about {format_bytes(need)}, more than the {format_bytes(have)} "
            "that can be used now", path=volume.source,
            hint="Crop it around the region of interest with --roi i0:i1,j0:j1,k0:k1, use --quality fast "
                 "(one sample), give fewer prompts at a time, or raise DIFFUGTS_MEMORY_BUDGET_GB.")
