"""What every Segmenter call checks before any work: voxels that can be segmented, then memory (CPU and GPU)."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..io import Volume
from ..io.read import check_finite
from .memory import check_memory

MIN_SLICE_VOXELS = 4  # along each of the two longest axes: a 2D image is one slice, a point is not an image


def check_input(volume: Volume, backbone, *, prompts: int, seeds: int, what: str = "segmenting") -> None:
    """A one-line InputError for voxels that cannot be segmented, a DiffuGTSError when it will not fit in the
    process's memory budget or on the backbone's GPU."""
    check_voxels(volume)
    check_memory(volume, backbone.config, prompts=prompts, seeds=seeds, device=backbone.device, what=what)


def check_voxels(volume: Volume) -> None:
    """Refuse NaN or infinite voxels, an image too small to hold anything, and a constant one, saying which."""
    check_finite(volume.array, volume.source)
    if sorted(volume.size)[1] < MIN_SLICE_VOXELS:
        raise InputError(f"the image has {'x'.join(map(str, volume.size))} voxels: too small to segment",
                         path=volume.source, hint=f"At least {MIN_SLICE_VOXELS}x{MIN_SLICE_VOXELS} voxels in a slice "
                                                  "are needed; check that the whole image was exported.")
    low, high = np.min(volume.array), np.max(volume.array)
    if low == high:
        raise InputError(f"every voxel has the value {float(low):g}: the image holds nothing to segment",
                         path=volume.source, hint="Check that the right file or series was exported (not a blank "
                                                  "or placeholder image).")
