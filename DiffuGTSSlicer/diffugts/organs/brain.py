"""MR priors: the head or body (the foreground) and the brain.

A skull-stripped scan is told from a head with skull by its foreground (Otsu, largest component, holes
filled): a stripped brain holds :data:`BRAIN_ML` mL and fits in a box of :data:`BRAIN_BOX_MM` mm on every
axis. Then the brain is everything above its background (method "foreground"); otherwise the shipped MNI152 2009a template
(skull-stripped, so its voxels above 0 are the brain) is registered to the scan (similarity, then affine)
and its warped brain is the prior (method "template"). The start lines the template's top up with the
head's top less :data:`SCALP_MM` (a head scan often goes down to the neck, which would pull a centre of
mass away from the brain); only samples inside the head count (the air around a head with skull has
nothing to match in a template without one). A scan whose foreground is no head (wider than
:data:`HEAD_BOX_MM` across) has no brain prior: the body is used.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..evaluation.baselines import body_mask
from .atlas import atlases
from .grid import as_volume, like_working
from .register import register

BRAIN_ML = (700.0, 2200.0)
BRAIN_BOX_MM = 210.0
HEAD_BOX_MM = 260.0
SCALP_MM = 12.0
TEMPLATE_SOFTEN_MM = 2.0
STRIPPED_LEVEL = 0.1  # of the 99th percentile above the background


def foreground(working: sitk.Image) -> np.ndarray:
    """The MR foreground (head or body): Otsu, largest component, filled in 3D and slice by slice."""
    mask = body_mask(as_volume(working, "MR"))
    return np.stack([ndimage.binary_fill_holes(plane) for plane in mask])


def stripped_brain(working: sitk.Image) -> np.ndarray:
    """A skull-stripped scan's brain: everything above its zeroed background (dark CSF too), filled.

    Otsu, which finds the head, would cut sulcal CSF and dark grey matter off a brain."""
    array = sitk.GetArrayViewFromImage(working)
    low = float(array.min())
    above = array > low + STRIPPED_LEVEL * (float(np.percentile(array, 99)) - low)
    labels, count = ndimage.label(above)
    if count == 0:
        return above
    largest = labels == 1 + int(np.argmax(ndimage.sum_labels(above, labels, range(1, count + 1))))
    return np.stack([ndimage.binary_fill_holes(plane) for plane in ndimage.binary_fill_holes(largest)])


def _box_mm(working: sitk.Image, mask: np.ndarray) -> list[float]:
    return [(float(np.ptp(axis)) + 1) * working.GetSpacing()[2 - n] for n, axis in enumerate(np.nonzero(mask))]


def is_skull_stripped(working: sitk.Image, mask: np.ndarray) -> bool:
    """A brain alone: its volume and bounding box are a brain's, not a head's or a body's."""
    if not mask.any():
        return False
    volume_ml = float(mask.sum()) * float(np.prod(working.GetSpacing())) / 1000.0
    return BRAIN_ML[0] <= volume_ml <= BRAIN_ML[1] and max(_box_mm(working, mask)) <= BRAIN_BOX_MM


def is_head(working: sitk.Image, mask: np.ndarray) -> bool:
    """A head (with or without skull): its foreground is at most HEAD_BOX_MM wide and deep."""
    return bool(mask.any()) and max(_box_mm(working, mask)[1:]) <= HEAD_BOX_MM


def template_brain(working: sitk.Image, head: np.ndarray) -> sitk.Image:
    """The template's brain registered to the scan, as a probability on the working grid."""
    template = sitk.ReadImage(str(atlases("MR")[0].image), sitk.sitkFloat32)
    brain = sitk.Cast(template > 0, sitk.sitkUInt8)
    head_image = sitk.GetImageFromArray(_top_of(head, working.GetSpacing()[2], SCALP_MM).astype(np.uint8))
    head_image.CopyInformation(working)
    template_top = _top_of(sitk.GetArrayFromImage(brain) > 0, template.GetSpacing()[2], 0.0)
    moving_fg = sitk.GetImageFromArray(template_top.astype(np.uint8))
    moving_fg.CopyInformation(template)
    inside = sitk.GetImageFromArray(ndimage.binary_erosion(head, iterations=1).astype(np.uint8))
    inside.CopyInformation(working)
    transform = register(sitk.Normalize(working), sitk.Normalize(template), head_image, moving_fg, search_z=False,
                         fixed_mask=inside)
    warped = sitk.Resample(sitk.Cast(brain, sitk.sitkFloat32), working, transform, sitk.sitkLinear, 0.0)
    return like_working(sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(warped, TEMPLATE_SOFTEN_MM)),
                        working)


def _top_of(mask: np.ndarray, spacing_z: float, skip_mm: float, depth_mm: float = 100.0) -> np.ndarray:
    """The mask's slab ``depth_mm`` deep starting ``skip_mm`` below its top (axis 0 is superior)."""
    slices = np.flatnonzero(mask.any(axis=(1, 2)))
    if slices.size == 0:
        return mask
    top = slices.max() - int(round(skip_mm / spacing_z))
    keep = np.zeros(mask.shape[0], bool)
    keep[max(0, top - int(depth_mm / spacing_z)):max(0, top + 1)] = True
    return mask & keep[:, None, None]
