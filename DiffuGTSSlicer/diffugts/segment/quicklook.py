"""A PNG quick-look: axial, coronal and sagittal slices through the largest finding, masks overlaid.

Slices are shown as radiologists read them (patient right on the image's left, anterior and superior
up), with square pixels in millimetres, on a robust intensity window (0.5-99.5th percentile).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..io import Volume, atomic_output, to_ras

PIXELS_PER_VIEW = 320
ALPHA = 0.45


def focus_point(masks: Sequence[np.ndarray]) -> tuple[int, int, int] | None:
    """[k, j, i] centroid of the largest connected component over all masks, or None when all are empty."""
    best, best_size = None, 0
    for mask in masks:
        labels, count = ndimage.label(mask > 0)
        if not count:
            continue
        sizes = np.bincount(labels.ravel())[1:]
        largest = int(np.argmax(sizes)) + 1
        if sizes[largest - 1] > best_size:
            best_size = int(sizes[largest - 1])
            best = tuple(int(round(c)) for c in ndimage.center_of_mass(labels == largest))
    return best


def _views(array: np.ndarray, point: tuple[int, int, int], spacing: tuple[float, float, float]):
    """(slice [rows, cols], (row mm, col mm)) for axial, coronal, sagittal of a RAS-canonical [k, j, i] array."""
    k, j, i = point
    si, sj, sk = spacing
    axial = array[k][::-1, ::-1]  # rows: anterior up; columns: patient right on the left
    coronal = array[:, j, :][::-1, ::-1]  # rows: superior up
    sagittal = array[:, :, i][::-1, ::-1]  # rows: superior up; columns: anterior on the left
    return [(axial, (sj, si)), (coronal, (sk, si)), (sagittal, (sk, sj))]


def _to_pixels(image: np.ndarray, mm: tuple[float, float], resample):
    from PIL import Image

    rows, cols = image.shape[:2]
    height, width = rows * mm[0], cols * mm[1]
    scale = PIXELS_PER_VIEW / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return Image.fromarray(image).resize(size, resample)


def write_quicklook(path: str | Path, image: Volume, masks: Sequence[Volume],
                    colors: Sequence[tuple[float, float, float]]) -> Path:
    """Write the three-view PNG of ``image`` with ``masks`` (same grid) in ``colors`` (RGB in [0, 1])."""
    from PIL import Image

    canonical, _ = to_ras(image)
    mask_arrays = [to_ras(m)[0].array > 0 for m in masks]
    point = focus_point(mask_arrays) or tuple(n // 2 for n in canonical.array.shape)
    low, high = np.percentile(canonical.array[::2, ::2, ::2], [0.5, 99.5])
    tiles = []
    for index, (view, mm) in enumerate(_views(canonical.array, point, canonical.spacing)):
        # only the three slices are coloured: whole-volume RGB copies cost gigabytes on large scans
        gray = np.clip((view.astype(np.float32) - low) / max(high - low, 1e-6), 0, 1)
        rgb = np.repeat(gray[..., None], 3, axis=-1)
        for mask, color in zip(mask_arrays, colors):
            cut = _views(mask, point, canonical.spacing)[index][0]
            rgb[cut] = (1 - ALPHA) * rgb[cut] + ALPHA * np.asarray(color)
            rgb[cut & ~ndimage.binary_erosion(cut)] = color
        tiles.append(_to_pixels(np.ascontiguousarray((rgb * 255).astype(np.uint8)), mm, Image.NEAREST))
    sheet = Image.new("RGB", (sum(t.width for t in tiles) + 8 * (len(tiles) - 1), max(t.height for t in tiles)))
    x = 0
    for tile in tiles:
        sheet.paste(tile, (x, 0))
        x += tile.width + 8
    with atomic_output(path) as temp:
        sheet.save(temp, format="PNG")
    return Path(path)
