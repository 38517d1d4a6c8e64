"""Lesion shapes: an ellipsoid, lobulated and optionally spiculated, then elastically deformed by a random smooth
displacement field; and its fractional occupancy of a scan's voxels (partial volume at the scan's resolution).

Shapes live in world millimetres (LPS) and reuse the phantom generator's implicit shapes (normalized radius
``q`` < 1 inside), so one definition serves any grid, oblique and anisotropic ones included.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..phantom.shapes import Ellipsoid, RandomField, rotation
from .recipes import Recipe


@dataclass
class LesionShape:
    """A deformed ellipsoid: ``q(x + displacement(x))`` of ``body``; ``radius`` is its mean semi-axis in mm."""

    body: Ellipsoid
    displacement: tuple[RandomField, RandomField, RandomField]
    amplitude_mm: float
    radius: float

    @property
    def center(self) -> np.ndarray:
        return self.body.center

    def q(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        fx, fy, fz = self.displacement
        a = np.float32(self.amplitude_mm)
        return self.body.q(x + a * fx(x, y, z), y + a * fy(x, y, z), z + a * fz(x, y, z))

    def reach_mm(self) -> float:
        """A radius (mm) around the centre that holds the whole shape."""
        low, high = self.body.bounds()
        return float(np.max(high - low)) / 2 + self.amplitude_mm * 2.5


def make_shape(rng: np.random.Generator, recipe: Recipe, center: np.ndarray, diameter_mm: float,
               normal: np.ndarray | None = None, scale: float = 1.0) -> LesionShape:
    """A lesion of greatest diameter about ``diameter_mm`` x ``scale``; with ``normal`` (a unit vector in LPS)
    its shortest axis lies along it (lesions that grow on an organ's surface)."""
    longest = diameter_mm * scale / 2
    middle = longest / rng.uniform(*recipe.elongation)
    shortest = longest * rng.uniform(*recipe.flatness)
    semi = np.array([longest, middle, min(middle, shortest)], dtype=float)
    frame = rotation(rng, 180)
    if normal is not None:
        frame = _frame_with_last_axis(normal, rng)
    lobulation = rng.uniform(*recipe.lobulation)
    spikes = recipe.spikes[1] > 0 and rng.random() < recipe.spike_probability
    directions = lengths = None
    if spikes:
        count = int(rng.integers(recipe.spikes[0], recipe.spikes[1] + 1))
        directions = rng.normal(size=(count, 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        lengths = rng.uniform(0.3, 1.0, size=count)
    radius = float(np.mean(semi))
    body = Ellipsoid(center, semi, frame, lobulation, RandomField(rng, 1.5 * radius), directions, lengths)
    wavelength = 2.0 * radius
    fields = (RandomField(rng, wavelength), RandomField(rng, wavelength), RandomField(rng, wavelength))
    return LesionShape(body, fields, rng.uniform(*recipe.deformation) * radius, radius)


def _frame_with_last_axis(normal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A rotation whose third column is ``normal`` and first two are a random pair in the tangent plane."""
    n = normal / np.linalg.norm(normal)
    helper = np.eye(3)[int(np.argmin(np.abs(n)))]
    u = np.cross(n, helper)
    u /= np.linalg.norm(u)
    v = np.cross(n, u)
    angle = rng.uniform(0, 2 * np.pi)
    first = np.cos(angle) * u + np.sin(angle) * v
    return np.stack([first, np.cross(n, first), n], axis=1)


def occupancy(q: np.ndarray, level: float, radial_mm: np.ndarray, extent_mm: np.ndarray) -> np.ndarray:
    """Fraction of each voxel inside ``q < level``: a linear ramp one voxel wide across the boundary.

    ``radial_mm`` converts q to mm near the boundary (distance from the centre / q); ``extent_mm`` is the voxel's
    width along the direction from the centre, so the ramp follows the scan's own (anisotropic) resolution.
    """
    signed_mm = (q - level) * radial_mm
    return np.clip(0.5 - signed_mm / extent_mm, 0.0, 1.0).astype(np.float32)
