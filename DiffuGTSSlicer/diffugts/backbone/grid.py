"""From a Volume to the model grid and exactly back.

Forward: reorient to RAS (exact axis permutation/flip, diffugts.io.to_ras), resample to the backbone's
spacing with MONAI's Resize, normalize intensities, pad to a size the networks accept. Backward: crop
the padding, resample to the canonical size, undo the intensity map, undo the reorientation: the
result lies on the input's exact grid (size, spacing, origin, direction).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import DiffuGTSError
from ..io import Reorientation, Volume, to_ras
from .base import Conditioning
from .config import BackboneConfig
from .intensity import IntensityMap, convention_for, intensity_map, modality_family


@dataclass
class ModelGrid:
    """How a volume was brought onto the model grid, to go back exactly."""

    reorientation: Reorientation
    canonical: Volume
    intensity: IntensityMap
    resized: tuple[int, int, int]  # (X, Y, Z) after resampling, before padding
    padded: tuple[int, int, int]
    spacing_mm: tuple[float, float, float]  # actual spacing on the model grid (per X, Y, Z)
    modality: str  # as the networks are told it: 'CT', 'MR', 'MR-T1c', ...

    def crop(self, tensor: torch.Tensor) -> torch.Tensor:
        x, y, z = self.resized
        return tensor[..., :x, :y, :z]

    def conditioning(self, top_region: str = "chest", bottom_region: str = "abdomen") -> Conditioning:
        """What the networks are told about this volume: its model-grid spacing, modality, body region."""
        return Conditioning(tuple(self.spacing_mm), self.modality, top_region, bottom_region)


def size_multiple(config: BackboneConfig) -> int:
    """Image sizes must divide by the VAE factor times the UNet's downsampling."""
    levels = len(config.unet["num_channels"]) - 1
    return config.latent_downsample * 2**levels


def _resize(tensor: torch.Tensor, size: tuple[int, int, int], *, anti_aliasing: bool) -> torch.Tensor:
    """MONAI Resize in two passes: area averaging along the axes that shrink (anti-aliased, and light on
    memory, unlike Gaussian pre-smoothing of the whole volume), then trilinear along the axes that grow."""
    from monai.transforms import Resize

    if tuple(tensor.shape[1:]) == tuple(size):
        return tensor
    shrunk = tuple(min(t, s) for t, s in zip(size, tensor.shape[1:]))
    if shrunk != tuple(tensor.shape[1:]):
        mode = "area" if anti_aliasing else "trilinear"
        kwargs = {} if mode == "area" else {"align_corners": False}
        tensor = torch.as_tensor(Resize(spatial_size=shrunk, mode=mode, **kwargs)(tensor)).float()
    if shrunk != tuple(size):
        tensor = torch.as_tensor(Resize(spatial_size=size, mode="trilinear", align_corners=False)(tensor)).float()
    return tensor


def modality_hint(config: BackboneConfig, modality: str, reason: str | None = None) -> str:
    """What to do when ``config`` cannot read ``modality``: the backbone that can (a config's 'other_modalities'),
    and the flag for a wrong guess."""
    family = modality_family(modality)
    other = config.other_modalities.get(family)
    text = f"It models {', '.join(config.modalities)} only."
    if other:
        text += f" For {family.upper()} use --backbone {other['backbone']} (weights package {other['package']})."
    guessed = f" The image was taken for {modality} ({reason})." if reason else ""
    other_family = "MR" if family == "ct" else "CT"
    return text + guessed + f" If it is a {other_family}, pass --modality {other_family}."


def to_model_grid(volume: Volume, config: BackboneConfig, *, modality: str | None = None,
                  mask: Volume | None = None) -> tuple[torch.Tensor, torch.Tensor | None, ModelGrid]:
    """(image [1,1,X,Y,Z] in [0,1], mask [1,1,X,Y,Z] in {0,1} or None, ModelGrid)."""
    name = modality or volume.modality
    convention = convention_for(config.intensity, name)
    if convention is None:
        raise DiffuGTSError(f"backbone {config.name} does not model {name} images", path=volume.source,
                            hint=modality_hint(config, name, volume.metadata.get("modality_reason")
                                               if name == volume.modality else None))
    if mask is not None and not mask.grid.matches(volume.grid, tolerance=1e-3):
        raise DiffuGTSError("the mask is not on the image's grid (size, spacing, origin or direction differ)",
                            path=mask.source, hint="Resample the mask onto the image first (for example in Slicer).")
    canonical, reorientation = to_ras(volume)
    array = canonical.array.transpose(2, 1, 0)  # [i, j, k] = [R, A, S]
    imap = intensity_map(convention, array)
    size = canonical.size
    target = tuple(max(1, int(round(n * s / t))) for n, s, t in zip(size, canonical.spacing, config.spacing_mm))
    image = torch.from_numpy(imap.forward(array))[None]
    image = _resize(image, target, anti_aliasing=any(t < n for t, n in zip(target, size)))
    multiple = size_multiple(config)
    padded = tuple(int(np.ceil(t / multiple) * multiple) for t in target)
    pads = [(0, p - t) for p, t in zip(padded, target)]
    # edge padding: no artificial boundary for the VAE to reconstruct
    image = torch.from_numpy(np.pad(image.numpy(), [(0, 0), *pads], mode="edge"))[None]
    spacing = tuple(n * s / t for n, s, t in zip(size, canonical.spacing, target))
    grid = ModelGrid(reorientation, canonical, imap, target, padded, spacing, name)
    mask_tensor = None
    if mask is not None:  # conservative: partial overlap is masked
        mask_tensor = (map_to_model_grid(mask.like((mask.array > 0).astype(np.float32)), grid) > 0.05).float()
    return image.float(), mask_tensor, grid


def map_to_model_grid(volume: Volume, grid: ModelGrid) -> torch.Tensor:
    """A map on the input's grid (a mask or a probability, no intensity mapping) carried onto ``grid``'s model grid
    as ``[1, 1, X, Y, Z]`` float32, area-averaged where it shrinks, zero in the padding."""
    canonical, _ = to_ras(volume)
    array = torch.from_numpy(np.ascontiguousarray(canonical.array.transpose(2, 1, 0), dtype=np.float32))[None]
    resized = _resize(array, grid.resized, anti_aliasing=True)
    pads = [(0, p - t) for p, t in zip(grid.padded, grid.resized)]
    return torch.nn.functional.pad(resized, [v for p in reversed(pads) for v in p])[None]


def from_model_grid(tensor: torch.Tensor, grid: ModelGrid, *, intensities: bool = True) -> Volume:
    """A model-grid image ``[1,1,X,Y,Z]`` back on the input's exact grid (float32, raw intensity units)."""
    # resampled in the Volume's [k, j, i] order: the small model-grid tensor is transposed, not the output
    cropped = grid.crop(tensor.detach().cpu().float())[0].permute(0, 3, 2, 1)
    canonical_size = grid.canonical.size
    shrinks = any(c < r for c, r in zip(canonical_size, grid.resized))
    back = _resize(cropped, canonical_size[::-1], anti_aliasing=shrinks)
    array = back[0].numpy()
    if intensities:  # decoded values outside the convention's [0, 1] range are not representable
        array = grid.intensity.inverse(np.clip(array, 0.0, 1.0))
    canonical = grid.canonical.like(np.ascontiguousarray(array, dtype=np.float32))
    return grid.reorientation.to_original(canonical)
