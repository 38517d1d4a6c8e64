"""Where a prompt's organ lies, on the model grid: what gates its maps and what the refinement head is told.

The organ comes from the prompt's words (``diffugts.organs.organ_for``); its prior is the user's organ mask
when one is given, else ``diffugts.organs.organ_prior`` (rules, atlases, templates; the body when the organ has
none). Three maps on the model grid:
- ``probability``: the prior itself (a refinement input);
- ``region``: where findings may lie, the prior above 0.5 grown by :data:`MARGIN_MM` (a tumor bulges out of
  its organ, and an atlas prior is a few millimetres off); a user's mask is taken as it is;
- ``zscore``: the image's robust z-score against the organ's own intensities, ``(x - median) / (1.4826 MAD)``
  clipped to +-:data:`Z_CLIP` and divided by it (a refinement input): what the organ-restricted intensity
  baseline thresholds, given to the head as one cue among the residuals.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..backbone.grid import ModelGrid, map_to_model_grid
from ..evaluation.baselines import MAD_TO_SD
from ..io import Volume
from ..organs.prior import OrganPrior, OrganPriors, user_prior

MARGIN_MM = 6.0
Z_CLIP = 8.0
MIN_ORGAN_VOXELS = 50  # fewer organ voxels than this on the model grid: statistics of the whole search region
MIN_PEAK = 0.1  # a prior that never reaches this on the model grid places no organ in view


@dataclass
class OrganContext:
    """A prompt's organ on the model grid ([1, 1, X, Y, Z] each) and how its prior was made."""

    organ: str
    method: str  # "user", "rule", "atlas", "template", "foreground" or "body"
    note: str
    probability: torch.Tensor
    region: torch.Tensor  # {0, 1}
    zscore: torch.Tensor  # in [-1, 1]


def prompt_organ(prompt) -> str:
    """The organ a parsed prompt is searched in: the one its words name, else the body."""
    from ..organs import organ_for

    return organ_for(prompt.organ_name) if prompt.organ_name else "body"


def organ_context(volume: Volume, organ: str, image: torch.Tensor, grid: ModelGrid, *,
                  organ_mask: Volume | None, priors: OrganPriors | None) -> OrganContext:
    """The context of ``organ`` for ``volume`` (its model-grid ``image`` and ``grid``, as encoded): from the user's
    ``organ_mask`` when given, else from ``priors`` (the volume's, shared by its prompts: the atlases are
    registered to a scan once, whatever the organ; None only with an organ mask)."""
    prior = user_prior(volume, organ, organ_mask) if organ_mask is not None else priors.prior(organ)
    return context_of(prior, image, grid)


def context_of(prior: OrganPrior, image: torch.Tensor, grid: ModelGrid) -> OrganContext:
    """An organ prior (on the input's grid) as a context on the model grid of ``image``."""
    probability = map_to_model_grid(prior.probability, grid).clamp(0, 1)
    # a thin or small organ can fall below 0.5 everywhere once averaged onto the coarser model grid
    inside = probability >= min(0.5, 0.5 * float(probability.max()))
    if float(probability.max()) < MIN_PEAK:
        inside = torch.zeros_like(probability, dtype=torch.bool)
    if prior.method == "user":
        region = inside.float()
    else:
        reach = [max(0, round(MARGIN_MM / s)) for s in grid.spacing_mm]
        region = F.max_pool3d(inside.float(), [2 * r + 1 for r in reach], stride=1, padding=reach)
    return OrganContext(prior.organ, prior.method, prior.note, probability, region,
                        robust_zscore(image, inside if _enough(inside, grid) else region > 0, grid))


def robust_zscore(image: torch.Tensor, where: torch.Tensor, grid: ModelGrid) -> torch.Tensor:
    """``image``'s robust z-score against its values ``where`` (in the unpadded part), clipped and scaled to [-1, 1]."""
    values = grid.crop(image)[grid.crop(where)]
    if values.numel() == 0:
        return torch.zeros_like(image)
    median = values.median()
    spread = MAD_TO_SD * (values - median).abs().median()
    if float(spread) <= 0:
        spread = values.std() if values.numel() > 1 and float(values.std()) > 0 else torch.tensor(1.0)
    return ((image - median) / spread).clamp(-Z_CLIP, Z_CLIP) / Z_CLIP


def _enough(inside: torch.Tensor, grid: ModelGrid) -> bool:
    return int(grid.crop(inside).sum()) >= MIN_ORGAN_VOXELS
