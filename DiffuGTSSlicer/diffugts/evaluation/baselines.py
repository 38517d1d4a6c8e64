"""The intensity-outlier baseline: voxels far from the organ's (or body's) robust intensity statistics.

Inside the region (the organ mask when the case has one, else the body: see :func:`body_mask`), the
image is median-filtered (3 voxels) to quiet texture noise, and a voxel is an outlier when its robust
z-score ``|x - median| / (1.4826 * MAD)`` exceeds :data:`OUTLIER_K`. Components are seeded only away
from the region's rim (partial volume there mimics outliers), those smaller than :data:`MIN_COMPONENT_MM3`
are dropped and the :data:`KEEP_COMPONENTS` largest are kept. Presence is the fraction of the region the
kept components cover, divided by :data:`PRESENCE_FULL_FRACTION` and clipped to [0, 1]. Pure
numpy/scipy, on the input's grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..io import Volume

OUTLIER_K = 3.5  # robust z-score above which a voxel is an outlier
MAD_TO_SD = 1.4826  # MAD of a normal distribution times this is its standard deviation
MEDIAN_FILTER_VOXELS = 3
EDGE_VOXELS = 1  # the region's rim, where partial volume mimics outliers: grown into, never seeded from
MIN_COMPONENT_MM3 = 30.0
KEEP_COMPONENTS = 2
PRESENCE_FULL_FRACTION = 0.05  # a region 5% covered by outliers scores presence 1
CT_BODY_HU = -500.0
ORGAN, BODY = "organ", "body"


@dataclass(frozen=True)
class OutlierResult:
    """The baseline's mask (uint8 0/1 on the input grid), its presence score and the region it searched."""

    mask: Volume
    presence: float
    region: str  # ORGAN or BODY


def intensity_outliers(image: Volume, organ_mask: Volume | None = None) -> OutlierResult:
    """Outlier components of ``image`` inside ``organ_mask`` (nonzero), or inside the body when it is None.

    An empty organ mask (the organ is not in view) gives an empty mask and presence 0."""
    if organ_mask is not None:
        region, kind = organ_mask.array > 0, ORGAN
    else:
        region, kind = body_mask(image), BODY
    mask = np.zeros(image.array.shape, dtype=np.uint8)
    if not region.any():
        return OutlierResult(image.like(mask, modality="mask"), 0.0, kind)
    box = ndimage.find_objects(region.astype(np.uint8))[0]
    inside = region[box]
    smooth = ndimage.median_filter(image.array[box].astype(np.float32), size=MEDIAN_FILTER_VOXELS)
    values = smooth[inside]
    center = float(np.median(values))
    spread = MAD_TO_SD * float(np.median(np.abs(values - center)))
    if spread <= 0:
        spread = float(values.std()) or 1.0
    outliers = inside & (np.abs(smooth - center) > OUTLIER_K * spread)
    core = ndimage.binary_erosion(inside, iterations=EDGE_VOXELS)  # partial-volume voxels at edges are no seeds
    kept = _largest_components(outliers & core, MIN_COMPONENT_MM3 / (image.voxel_volume_ml * 1000.0))
    mask[box] = ndimage.binary_dilation(kept, iterations=EDGE_VOXELS, mask=outliers) | kept
    presence = min(1.0, float(mask.sum()) / float(region.sum()) / PRESENCE_FULL_FRACTION)
    return OutlierResult(image.like(mask, modality="mask"), presence, kind)


def body_mask(image: Volume) -> np.ndarray:
    """The body: CT above -500 HU, MR above an Otsu threshold; its largest component with holes filled."""
    array = image.array
    threshold = CT_BODY_HU if image.modality.upper().startswith("CT") else otsu_threshold(array)
    foreground = array > threshold
    labels, count = ndimage.label(foreground)
    if count == 0:
        return foreground
    largest = 1 + int(np.argmax(ndimage.sum_labels(foreground, labels, range(1, count + 1))))
    return ndimage.binary_fill_holes(labels == largest)


def otsu_threshold(array: np.ndarray, bins: int = 256) -> float:
    """The intensity that best separates two classes (Otsu, on a histogram of ``bins`` bins)."""
    counts, edges = np.histogram(array.astype(np.float64), bins=bins)
    centers = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(counts)
    weight_high = weight_low[-1] - weight_low
    sum_low = np.cumsum(counts * centers)
    mean_low = sum_low / np.maximum(weight_low, 1)
    mean_high = (sum_low[-1] - sum_low) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(edges[1 + int(np.argmax(between[:-1]))])


def _largest_components(binary: np.ndarray, min_voxels: float) -> np.ndarray:
    """The KEEP_COMPONENTS largest 26-connected components of at least ``min_voxels`` voxels, as uint8."""
    labels, count = ndimage.label(binary, structure=np.ones((3, 3, 3), dtype=bool))
    if count == 0:
        return np.zeros(binary.shape, dtype=np.uint8)
    sizes = ndimage.sum_labels(binary, labels, range(1, count + 1))
    order = [n for n in np.argsort(sizes)[::-1][:KEEP_COMPONENTS] if sizes[n] >= min_voxels]
    return np.isin(labels, np.asarray(order, dtype=np.int64) + 1).astype(np.uint8)
