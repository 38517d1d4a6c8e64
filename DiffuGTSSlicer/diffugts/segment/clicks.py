"""Points and boxes that correct a prompt's result, in patient coordinates (RAS mm, Slicer's world).

A training-free modulation (see :mod:`.pipeline`, stages guide and click). Each point has an extent on the
model grid: the voxels connected to it, within :data:`REACH_MM`, whose intensity is like the point's own
(median of a :data:`CORE_MM` ball, within :data:`TOLERANCE_SDS` of its robust spread), joined with a Gaussian
of :data:`SIGMA_MM` around it. Then
- a positive point raises the prompt's attention and refined probability over its extent
  (``1 - (1 - p)(1 - e)``), adds its :data:`REACH_MM` ball to the search region, keeps the mask's
  component it touches whatever its size, and makes the finding count as found;
- a negative point lowers them over its extent (``p (1 - e)``) and removes the mask's component it touched
  before (unless a positive point touches that component too);
- each extent counts only where its point is nearer than every point of the other sign (so a negative
  point trims what a positive one's extent leaked into, and does not wipe out what lies at the positive one);
- a box restricts the prompt's search region (its attention, probability and mask) to the box.
A click channel for the refinement head, trained with simulated clicks, is the later route: a head file
names its input channels (RefineConfig.inputs), so a 'clicks' channel can be added without breaking old heads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..backbone.grid import ModelGrid
from ..errors import DiffuGTSError
from ..io import Volume
from .organ_context import OrganContext
from .points import ClickBox, Guidance, Point, Vector

SIGMA_MM = 4.0  # width of a point's Gaussian
REACH_MM = 30.0  # how far a point's extent reaches; a positive point adds this ball to the search region
CORE_MM = 4.0  # the ball whose intensities stand for the point's own
TOLERANCE_SDS = 2.5  # the extent: intensities within this many robust SDs of the point's
MIN_TOLERANCE = 0.005  # ... and at least this much of the model's [0, 1] intensity range (10 HU for CT)
EDGE_MM = 1e-3  # a voxel centre on a box's face is inside
TOUCH_MM = SIGMA_MM  # a component this close to a point is one it touches

def continuous_index(volume: Volume, position: Vector) -> np.ndarray:
    """The voxel index (i, j, k), as real numbers, of a RAS position on ``volume``'s grid."""
    return (np.linalg.inv(volume.grid.ijk_to_ras) @ np.array([*position, 1.0]))[:3]


def extent(volume: Volume) -> str:
    """The RAS span of ``volume``'s voxels, for messages."""
    corners = np.array([[i, j, k, 1.0] for i in (-0.5, volume.size[0] - 0.5) for j in (-0.5, volume.size[1] - 0.5)
                        for k in (-0.5, volume.size[2] - 0.5)])
    points = (volume.grid.ijk_to_ras @ corners.T)[:3]
    return ", ".join(f"{axis} {lo:.1f} to {hi:.1f}" for axis, lo, hi in zip("RAS", points.min(1), points.max(1)))


def check_inside(texts: Sequence[str], guidance: Sequence[Guidance], volume: Volume, work: Volume) -> None:
    """Refuse a point outside the volume (or outside the ROI worked on) and a box that misses it."""
    for text, given in zip(texts, guidance):
        for point in given.points:
            for where, grid_volume in (("the volume", volume), ("the ROI worked on (--roi)", work)):
                index = continuous_index(grid_volume, point.position)
                if np.any(index < -0.5) or np.any(index > np.array(grid_volume.size) - 0.5):
                    raise DiffuGTSError(
                        f"the {'positive' if point.positive else 'negative'} point {_ras_text(point.position)} of "
                        f"prompt {text!r} is outside {where}, which spans {extent(grid_volume)} mm (RAS)",
                        hint="Give a point inside the image, in RAS mm (Slicer's world); for LPS coordinates use "
                             "--lps or \"coordinates\": \"LPS\".")
        if given.box is not None and not box_mask(work, given.box, probe=True):
            raise DiffuGTSError(f"the box {_ras_text(given.box.low)} to {_ras_text(given.box.high)} of prompt "
                                f"{text!r} does not overlap the image, which spans {extent(work)} mm (RAS)",
                                hint="Give two opposite corners in RAS mm (for LPS: --lps or \"coordinates\": \"LPS\").")


def _ras_text(position: Vector) -> str:
    return "(" + ", ".join(f"{v:g}" for v in position) + ")"


def _corners(box: ClickBox) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.array(box.low, float), np.array(box.high, float)
    return np.minimum(a, b), np.maximum(a, b)


def model_positions(grid: ModelGrid) -> torch.Tensor:
    """The RAS position (mm) of every voxel of the padded model grid, [X, Y, Z, 3] float32."""
    affine = torch.as_tensor(grid.canonical.grid.ijk_to_ras, dtype=torch.float64)
    axes = []
    for axis, (size, resized, padded) in enumerate(zip(grid.canonical.size, grid.resized, grid.padded)):
        index = (torch.arange(padded, dtype=torch.float64) + 0.5) * size / resized - 0.5  # Resize, align_corners=False
        shape = [1, 1, 1, 3]
        shape[axis] = padded
        axes.append((index[:, None] * affine[:3, axis][None]).reshape(shape))
    return (axes[0] + axes[1] + axes[2] + affine[:3, 3]).float()


def extent_of(point: Point, image: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """[1, 1, X, Y, Z] in [0, 1]: the point's extent (see the module's docstring)."""
    from scipy import ndimage

    squared = ((positions - torch.tensor(point.position, dtype=torch.float32)) ** 2).sum(-1)
    values = image[0, 0]
    core = squared <= max(CORE_MM**2, float(squared.min()))
    inner = values[core]
    median = inner.median()
    spread = 1.4826 * float((inner - median).abs().median())
    similar = ((values - median).abs() <= max(TOLERANCE_SDS * spread, MIN_TOLERANCE)) & (squared <= REACH_MM**2)
    similar |= core
    labels, _ = ndimage.label(similar.numpy())
    seed = np.unravel_index(int(torch.argmin(squared)), labels.shape)
    connected = torch.from_numpy(labels == labels[seed]).float()
    return torch.maximum(connected, torch.exp(-squared / (2 * SIGMA_MM**2)))[None, None]


def extents(points: Sequence[Point], image: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """[1, 1, X, Y, Z]: the largest of the points' extents (zero with no point)."""
    field = torch.zeros_like(image)
    for point in points:
        field = torch.maximum(field, extent_of(point, image, positions))
    return field


def ball(points: Sequence[Point], positions: torch.Tensor, radius: float) -> torch.Tensor:
    """[1, 1, X, Y, Z] {0, 1}: within ``radius`` mm of any of the points."""
    inside = torch.zeros(positions.shape[:3], dtype=torch.bool)
    for point in points:
        inside |= ((positions - torch.tensor(point.position, dtype=torch.float32)) ** 2).sum(-1) <= radius**2
    return inside.float()[None, None]


def inside_box(box: ClickBox | None, positions: torch.Tensor) -> torch.Tensor | float:
    """[1, 1, X, Y, Z] {0, 1} inside ``box``; 1.0 without a box."""
    if box is None:
        return 1.0
    low, high = (torch.tensor(c, dtype=torch.float32) for c in _corners(box))
    low, high = low - EDGE_MM, high + EDGE_MM
    return ((positions >= low) & (positions <= high)).all(-1).float()[None, None]


def raise_and_lower(values: torch.Tensor, guidance: Guidance, image: torch.Tensor,
                    positions: torch.Tensor) -> torch.Tensor:
    """``values`` in [0, 1] raised over the positive points' extents, lowered over the negative ones', 0 outside
    the box (``image``: the model-grid image the extents are found in); each extent counts only where its point
    is nearer than every point of the other sign."""
    if guidance.positive:
        raised = extents(guidance.positive, image, positions) * nearer(guidance.positive, guidance.negative, positions)
        values = 1 - (1 - values) * (1 - raised)
    return lower(values, guidance, image, positions) * inside_box(guidance.box, positions)


def lower(values: torch.Tensor, guidance: Guidance, image: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """``values`` lowered over the negative points' extents where a negative point is nearer than every positive
    one (a negative point trims what a positive one's extent leaked into, not what lies at the positive one)."""
    if not guidance.negative:
        return values
    lowered = extents(guidance.negative, image, positions) * nearer(guidance.negative, guidance.positive, positions)
    return values * (1 - lowered)


def nearer(points: Sequence[Point], others: Sequence[Point], positions: torch.Tensor) -> torch.Tensor | float:
    """[1, 1, X, Y, Z] {0, 1}: where the nearest of ``points`` is nearer than the nearest of ``others`` (1.0 with
    no others)."""
    if not others:
        return 1.0

    def distance(chosen: Sequence[Point]) -> torch.Tensor:
        return torch.stack([((positions - torch.tensor(p.position, dtype=torch.float32)) ** 2).sum(-1)
                            for p in chosen]).amin(0)

    return (distance(points) < distance(others)).float()[None, None]


def near(volume: Volume, points: Sequence[Point], radius: float) -> np.ndarray | None:
    """Booleans [k, j, i] on ``volume``'s grid within ``radius`` mm of any of the points (None with no point);
    each point's ball is computed in its own bounding box of voxels."""
    if not points:
        return None
    out = np.zeros(volume.array.shape, bool)
    affine = volume.grid.ijk_to_ras
    reach = radius / np.asarray(volume.spacing) + 1
    for point in points:
        centre = continuous_index(volume, point.position)
        low = np.clip(np.floor(centre - reach), 0, np.array(volume.size) - 1).astype(int)
        high = np.clip(np.ceil(centre + reach), 0, np.array(volume.size) - 1).astype(int) + 1
        i, j, k = np.meshgrid(*(np.arange(a, b) for a, b in zip(low, high)), indexing="ij")
        where = affine[:3, :3] @ np.stack([i.ravel(), j.ravel(), k.ravel()]) + affine[:3, 3:4]
        hit = (((where - np.array(point.position)[:, None]) ** 2).sum(0) <= radius**2).reshape(i.shape)
        nearest = np.clip(np.round(centre).astype(int), 0, np.array(volume.size) - 1)
        hit[tuple(nearest - low)] = True  # the point's own voxel, however coarse the grid
        out[low[2]:high[2], low[1]:high[1], low[0]:high[0]] |= hit.transpose(2, 1, 0)
    return out


def box_mask(volume: Volume, box: ClickBox, *, probe: bool = False) -> np.ndarray | bool:
    """Booleans [k, j, i]: the voxels of ``volume`` whose centres lie in ``box`` (slice by slice: light on memory);
    ``probe``: only whether any does."""
    low, high = _corners(box)
    affine = volume.grid.ijk_to_ras
    j, i = np.meshgrid(np.arange(volume.size[1]), np.arange(volume.size[0]), indexing="ij")
    plane = affine[:3, 0:1] * i.ravel() + affine[:3, 1:2] * j.ravel() + affine[:3, 3:4]
    out = np.zeros(volume.array.shape, bool) if not probe else None
    for k in range(volume.size[2]):
        where = plane + affine[:3, 2:3] * k
        hit = ((where >= low[:, None] - EDGE_MM) & (where <= high[:, None] + EDGE_MM)).all(0)
        if probe and hit.any():
            return True
        if not probe:
            out[k] = hit.reshape(volume.size[1], volume.size[0])
    return False if probe else out


def to_report(guidance: Guidance, volume: Volume) -> dict:
    """What report.json says of one prompt's clicks: each point in RAS and LPS mm with its voxel (i, j, k) on
    ``volume``'s grid, and the box's corners (RAS)."""
    points = []
    for point in guidance.points:
        index = np.round(continuous_index(volume, point.position)).astype(int)
        r, a, s = point.position
        points.append({"positive": point.positive, "position_ras": [round(v, 3) for v in point.position],
                       "position_lps": [round(v, 3) for v in (-r, -a, s)], "voxel_ijk": [int(v) for v in index]})
    box = None
    if guidance.box is not None:
        low, high = _corners(guidance.box)
        box = {"min_ras": [round(float(v), 3) for v in low], "max_ras": [round(float(v), 3) for v in high]}
    return {"points": points, "box": box}


@dataclass
class Guided:
    """A prompt's maps as its clicks have them: the attention the inpainting region is made of and the one the
    refinement reads (both raised by the positive points only, so a negative point reuses the samples and the
    refinement), the attention reported (lowered by the negative points too) and the organ context whose
    region gates the maps."""

    inpaint: torch.Tensor
    attention: torch.Tensor
    shown: torch.Tensor
    context: OrganContext


def guide(state, attention: torch.Tensor, context: OrganContext, guidance: Guidance) -> Guided:
    """Stage guide: the prompt's attention raised around its positive points (and, as reported, lowered around
    its negative ones), its search region grown around the positive points and cut to its box (``state``: the
    encoding)."""
    if not guidance:
        return Guided(attention, attention, attention, context)
    positions = model_positions(state.encoded.grid)
    region = context.region
    if guidance.positive:
        region = torch.maximum(region, ball(guidance.positive, positions, REACH_MM))
    region = region * inside_box(guidance.box, positions)
    image = state.encoded.image
    raised = raise_and_lower(attention, Guidance(guidance.positive), image, positions)
    shown = lower(raised, guidance, image, positions)
    return Guided(raised, raised * region, shown * region, dataclasses.replace(context, region=region))


def modulate(state, refined: tuple[torch.Tensor, torch.Tensor], guidance: Guidance
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Stage click: the refined probability raised over the positive points' extents and lowered over the
    negative ones', zero outside the box; the spread as it was; and, with negative points, the probability
    before they lowered it (postprocess removes the components they touched in it)."""
    if not guidance:
        return (*refined, None)
    probability, spread = refined
    image, positions = state.encoded.image, model_positions(state.encoded.grid)
    raised = raise_and_lower(probability, Guidance(guidance.positive, guidance.box), image, positions)
    if not guidance.negative:
        return raised, spread, None
    return lower(raised, guidance, image, positions), spread, raised


def touched_components(mask: np.ndarray, touch: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    """The connected components of ``mask`` with a voxel in ``touch`` but none in ``keep`` (booleans [k, j, i])."""
    from scipy import ndimage

    labels, _ = ndimage.label(mask)
    numbers = set(np.unique(labels[touch]).tolist()) - {0}
    if keep is not None:
        numbers -= set(np.unique(labels[keep]).tolist())
    return np.isin(labels, sorted(numbers))
