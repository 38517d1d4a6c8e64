"""CT organ priors by rule on the working grid: body, lungs (left, right) and bone.

- body: :func:`diffugts.evaluation.baselines.body_mask` (above -500 HU, largest component, holes filled),
  then filled slice by slice, so a thorax whose airway leaves the field of view keeps its lungs inside;
- lung: air (below -400 HU) inside the body (unless the field of view is a crop inside the body), less the
  outside air, which is pure air (below -950 HU) connected to the grid's faces, so also the trachea and
  main bronchi where the airway leaves the field of view (a crop that cuts the lungs keeps them: their
  parenchyma is not pure air); the air components of at least :data:`LUNG_MIN_ML` mL whose 10th
  percentile is above :data:`LUNG_P10_HU` are lung (parenchyma: about -850 HU; bowel gas has a pure-air
  core, below -960 HU even at 3 mm; emphysematous lungs, whose tenth percentile is below -950 HU by
  definition, are missed); then closed and filled slice by slice, so nodules, masses against the pleura and
  vessels are inside (the lung a tumor prompt searches); left and right split by the body's midline;
- bone: cortex (above :data:`CORTEX_HU`, components of at least :data:`BONE_MIN_ML`) grown into the voxels
  above :data:`BONE_HU` connected to it (marrow and thin bone at 3 mm; an enhancing liver is not connected),
  closed and filled slice by slice.
Each mask is softened by a Gaussian of one working voxel: a probability whose 0.5 level is the mask's edge.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..evaluation.baselines import body_mask
from ..io import Volume

AIR_HU = -400.0
AIRWAY_HU = -950.0
RIM_VOXELS = 2
CROP_FACE_FRACTION = 0.25
LUNG_MIN_ML = 5.0
LUNG_P10_HU = -930.0
LUNG_CLOSE_MM = 20.0
CORTEX_HU = 250.0
BONE_HU = 120.0
BONE_MIN_ML = 0.5
RULE_ORGANS = ("body", "lung", "left lung", "right lung", "bone")


def rule_mask(working: Volume, organ: str) -> np.ndarray:
    """The boolean mask of ``organ`` (one of :data:`RULE_ORGANS`) on an LPS-aligned CT working grid."""
    body = filled_body(working)
    if organ == "body":
        return body
    if organ == "bone":
        return _bone(working, body)
    lungs = _lungs(working, body)
    if organ == "lung":
        return lungs
    x_mm = working.origin[0] + working.spacing[0] * np.arange(lungs.shape[2])
    middle = _midline_x(working, body)
    left = (x_mm > middle)[None, None, :]  # LPS: x grows towards the patient's left
    return lungs & (left if organ == "left lung" else ~left)


def filled_body(working: Volume) -> np.ndarray:
    """The body mask with each axial slice's holes filled (axis 0 of the working grid is superior)."""
    body = body_mask(working)
    return np.stack([ndimage.binary_fill_holes(plane) for plane in body])


def _lungs(working: Volume, body: np.ndarray) -> np.ndarray:
    air = working.array < AIR_HU
    inside = air & ~_outside_air(working, air)
    if not _is_crop(body):
        inside &= body  # table pads and blankets (about -800 HU) lie outside the body
    labels, count = ndimage.label(inside)
    if count == 0:
        return inside
    sizes = ndimage.sum_labels(inside, labels, np.arange(1, count + 1)) * working.voxel_volume_ml
    keep = [n for n in 1 + np.flatnonzero(sizes >= LUNG_MIN_ML)
            if np.percentile(working.array[labels == n], 10) >= LUNG_P10_HU]
    return _with_nodules(np.isin(labels, keep), working, body)


def _with_nodules(lungs: np.ndarray, working: Volume, body: np.ndarray) -> np.ndarray:
    """The lungs with what lies in them: each lung (one side of the body's midline), slice by slice, closed by a
    disk of :data:`LUNG_CLOSE_MM` (a nodule against the pleura or a hilar mass makes a notch in the air) and its
    holes filled (nodules and vessels). Each side alone, so the tissue between the lungs is never bridged."""
    spacing = working.spacing
    radius = [max(1, int(round(LUNG_CLOSE_MM / s))) for s in spacing[:2]]  # (x, y) in voxels
    y, x = np.mgrid[-radius[1]:radius[1] + 1, -radius[0]:radius[0] + 1]
    disk = (y * spacing[1]) ** 2 + (x * spacing[0]) ** 2 <= LUNG_CLOSE_MM ** 2
    pad = max(radius)
    x_mm = working.origin[0] + spacing[0] * np.arange(lungs.shape[2])
    left = np.broadcast_to((x_mm > _midline_x(working, body))[None, :], lungs.shape[1:])
    out = np.zeros_like(lungs)
    for k, plane in enumerate(lungs):
        for side in (left, ~left):  # padded: closing must not erode at the grid's edge
            one = plane & side
            if one.any():
                closed = ndimage.binary_closing(np.pad(one, pad), structure=disk)[pad:-pad, pad:-pad]
                out[k] |= ndimage.binary_fill_holes(closed | one) & side
    return out


def _outside_air(working: Volume, air: np.ndarray) -> np.ndarray:
    """Air around the body and in the airway: pure air (below AIRWAY_HU) connected to the grid's faces,
    grown by :data:`RIM_VOXELS` into the air around it (the partial-volume rim at the skin and the bronchi)."""
    pure = working.array < AIRWAY_HU
    seeds = np.zeros_like(pure)
    for axis in range(3):
        for end in (0, -1):
            index = [slice(None)] * 3
            index[axis] = end
            seeds[tuple(index)] = pure[tuple(index)]
    outside = ndimage.binary_propagation(seeds, mask=pure)
    return ndimage.binary_dilation(outside, iterations=RIM_VOXELS, mask=air) | outside


def _is_crop(body: np.ndarray) -> bool:
    """A field of view inside the body (the body covers much of the grid's side faces): slices cannot be filled."""
    faces = [body[:, 0, :], body[:, -1, :], body[:, :, 0], body[:, :, -1]]
    return sum(float(face.sum()) for face in faces) > CROP_FACE_FRACTION * sum(face.size for face in faces)


def _midline_x(working: Volume, body: np.ndarray) -> float:
    """The body's centre along LPS x (mm): where the left and right lungs part."""
    columns = body.sum(axis=(0, 1))
    x_mm = working.origin[0] + working.spacing[0] * np.arange(body.shape[2])
    return float((columns * x_mm).sum() / max(columns.sum(), 1))


def _bone(working: Volume, body: np.ndarray) -> np.ndarray:
    dense = (working.array > CORTEX_HU) & body
    labels, count = ndimage.label(dense)
    if count:
        sizes = ndimage.sum_labels(dense, labels, range(1, count + 1)) * working.voxel_volume_ml
        dense = np.isin(labels, 1 + np.flatnonzero(sizes >= BONE_MIN_ML))
    grown = ndimage.binary_propagation(dense, mask=(working.array > BONE_HU) & body)
    closed = ndimage.binary_closing(grown, structure=np.ones((3, 3, 3), bool)) | grown
    return np.stack([ndimage.binary_fill_holes(plane) for plane in closed])


def soften(mask: np.ndarray) -> np.ndarray:
    """A mask as a probability: Gaussian of one voxel, so 0.5 lies on the mask's edge."""
    return ndimage.gaussian_filter(mask.astype(np.float32), sigma=1.0)
