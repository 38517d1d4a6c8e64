"""Coarse affine registration of an atlas (or template) onto a working-grid image, with SimpleITK.

The start is the translation that lines up the two foregrounds' centres across the patient (x, y) and,
along the body axis (z), the best of an exhaustive search: a scan may hold only part of the atlas's
field of view (a 4 cm abdominal slab, a thorax), so centres of mass would mislead there. Then the metric
(correlation for CT on soft-tissue-clipped HU: it found the right level where mutual information did not;
Mattes mutual information of :data:`BINS` bins across modalities; a fixed random sample, so runs repeat
exactly) drives a similarity transform, and an affine one where both images are at least
:data:`AFFINE_MIN_EXTENT_MM` long on every axis (a thin slab cannot pin down shear and scaling).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ..io.itk_messages import captured_itk_messages

BINS = 32
SAMPLING = 0.25
SEED = 7
ITERATIONS = 60  # per level and stage
Z_STEP_MM = 8.0
AFFINE_MIN_EXTENT_MM = 100.0
MIN_VOXELS = 8  # per axis, on the registration grid: fewer cannot be registered (and smoothing needs 4)


def registrable(image: sitk.Image) -> bool:
    """Whether an image has enough voxels on every axis to be registered."""
    return min(image.GetSize()) >= MIN_VOXELS


def _centroid(mask: sitk.Image) -> np.ndarray:
    array = sitk.GetArrayViewFromImage(mask)
    if not array.any():
        size = np.asarray(mask.GetSize(), dtype=float)
        return np.asarray(mask.TransformContinuousIndexToPhysicalPoint(((size - 1) / 2).tolist()))
    k, j, i = (float(c.mean()) for c in np.nonzero(array))
    return np.asarray(mask.TransformContinuousIndexToPhysicalPoint((i, j, k)))


def _extent(image: sitk.Image) -> np.ndarray:
    return np.asarray(image.GetSize(), dtype=float) * np.asarray(image.GetSpacing())


def _method(metric: str, fixed_mask: sitk.Image | None = None) -> sitk.ImageRegistrationMethod:
    method = sitk.ImageRegistrationMethod()
    if metric == "correlation":
        method.SetMetricAsCorrelation()
    else:
        method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=BINS)
    if fixed_mask is not None:
        method.SetMetricFixedMask(fixed_mask)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(SAMPLING, seed=SEED)
    method.SetInterpolator(sitk.sitkLinear)
    return method


def _z_range(image: sitk.Image) -> tuple[float, float]:
    size = image.GetSize()
    corners = [image.TransformIndexToPhysicalPoint((i, j, k)) for i in (0, size[0] - 1) for j in (0, size[1] - 1)
               for k in (0, size[2] - 1)]
    return min(c[2] for c in corners), max(c[2] for c in corners)


def _z_search(fixed: sitk.Image, moving: sitk.Image, start: np.ndarray, metric: str) -> np.ndarray:
    """The translation (x, y from ``start``) whose z offset matches best, among those that keep the (shorter)
    fixed image inside the moving one along z."""
    (f0, f1), (m0, m1) = _z_range(fixed), _z_range(moving)
    offsets = np.arange(m0 - f0, m1 - f1 + Z_STEP_MM / 2, Z_STEP_MM) if m1 - f1 >= m0 - f0 else [start[2]]
    method = _method(metric)
    best, best_value = start, np.inf
    for z in offsets:
        offset = np.array([start[0], start[1], z])
        method.SetInitialTransform(sitk.TranslationTransform(3, offset.tolist()), inPlace=False)
        try:
            with captured_itk_messages():
                value = method.MetricEvaluate(fixed, moving)
        except RuntimeError:  # no overlap at this offset (the x, y start missed): try the next
            continue
        if value < best_value:
            best, best_value = offset, value
    return best


def register(fixed: sitk.Image, moving: sitk.Image, fixed_fg: sitk.Image, moving_fg: sitk.Image, *,
             metric: str = "mi", search_z: bool = True, fixed_mask: sitk.Image | None = None) -> sitk.Transform:
    """The transform mapping fixed physical points into ``moving`` (what sitk.Resample wants).

    ``metric``: "mi" (Mattes mutual information: any two modalities) or "correlation" (same modality).
    The image with the shorter body axis is registered into the longer one (every sample of a thin slab
    then lands inside the other image, whatever the offset), and the transform inverted where needed;
    ``fixed_mask`` (only samples inside it count) keeps ``fixed`` as the fixed image."""
    if fixed_mask is None and _extent(fixed)[2] > _extent(moving)[2]:
        return register(moving, fixed, moving_fg, fixed_fg, metric=metric, search_z=search_z).GetInverse()
    start = _centroid(moving_fg) - _centroid(fixed_fg)
    if search_z:
        start = _z_search(fixed, moving, start, metric)
    transform: sitk.Transform = sitk.Similarity3DTransform()
    transform.SetCenter(_centroid(fixed_fg).tolist())
    transform.SetTranslation(start.tolist())
    stages = [transform]
    if (np.minimum(_extent(fixed), _extent(moving)) >= AFFINE_MIN_EXTENT_MM).all():
        stages.append(sitk.AffineTransform(3))
    for stage in stages:
        if isinstance(stage, sitk.AffineTransform):
            stage.SetCenter(transform.GetCenter())
            stage.SetMatrix(transform.GetMatrix())
            stage.SetTranslation(transform.GetTranslation())
        method = _method(metric, fixed_mask)
        method.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-3,
                                                        numberOfIterations=ITERATIONS, relaxationFactor=0.6)
        method.SetOptimizerScalesFromPhysicalShift()
        method.SetShrinkFactorsPerLevel([2, 1])
        method.SetSmoothingSigmasPerLevel([1.0, 0.0])
        method.SetInitialTransform(stage, inPlace=True)
        with captured_itk_messages():  # ITK's optimizer chatter is no use to a user
            method.Execute(fixed, moving)
        transform = stage
    return transform
