"""Implicit shapes in world millimetres (LPS): each gives a normalized radius ``q`` (< 1 inside) and its bounds.

Shapes are evaluated on whatever coordinate arrays they get (a block of a voxel grid, or a list
of points), so the same definition rasterizes any grid and answers "which organ is here?".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Bounds = tuple[np.ndarray, np.ndarray]  # world-space axis-aligned box (low corner, high corner)
FIELD_LIMIT = 2.5  # RandomField values are clipped to +-this, so perturbed shapes have finite bounds


class RandomField:
    """A smooth random field of about unit variance: a sum of random plane waves (cheap anywhere, any frame)."""

    def __init__(self, rng: np.random.Generator, wavelength_mm: float, waves: int = 6) -> None:
        directions = rng.normal(size=(waves, 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        lengths = 2 * np.pi / (wavelength_mm * rng.uniform(0.7, 1.3, size=waves))
        self.k = (directions * lengths[:, None]).astype(np.float32)
        self.phase = rng.uniform(0, 2 * np.pi, size=waves).astype(np.float32)
        self.scale = np.float32(np.sqrt(2.0 / waves))

    def __call__(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        total = np.zeros(np.broadcast_shapes(x.shape, y.shape, z.shape), dtype=np.float32)
        for (kx, ky, kz), phase in zip(self.k, self.phase):
            total += np.cos(kx * x + ky * y + kz * z + phase)
        return np.clip(total * self.scale, -FIELD_LIMIT, FIELD_LIMIT)


@dataclass
class Ellipsoid:
    """An ellipsoid, optionally lobulated (``roughness`` x a random field) and spiculated (radial spikes)."""

    center: np.ndarray
    semi_axes: np.ndarray
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))  # columns: the ellipsoid's axes in world
    roughness: float = 0.0
    texture: RandomField | None = None
    spike_directions: np.ndarray | None = None  # (m, 3) unit vectors
    spike_lengths: np.ndarray | None = None  # (m,) in units of the radius
    spike_sharpness: float = 40.0

    def __post_init__(self) -> None:
        self.center = np.asarray(self.center, dtype=np.float32)
        self.semi_axes = np.asarray(self.semi_axes, dtype=np.float32)
        self.rotation = np.asarray(self.rotation, dtype=np.float32)

    def bounds(self) -> Bounds:
        growth = 1.0 + self.roughness * FIELD_LIMIT
        if self.spike_lengths is not None:
            growth += float(np.max(self.spike_lengths, initial=0.0))
        half = np.abs(self.rotation) @ self.semi_axes * growth
        return self.center - half, self.center + half

    def q(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        dx, dy, dz = x - self.center[0], y - self.center[1], z - self.center[2]
        r = self.rotation
        u = (r[0, 0] * dx + r[1, 0] * dy + r[2, 0] * dz) / self.semi_axes[0]
        v = (r[0, 1] * dx + r[1, 1] * dy + r[2, 1] * dz) / self.semi_axes[1]
        w = (r[0, 2] * dx + r[1, 2] * dy + r[2, 2] * dz) / self.semi_axes[2]
        q = np.sqrt(u * u + v * v + w * w)
        if self.spike_directions is not None:
            norm = np.maximum(np.sqrt(dx * dx + dy * dy + dz * dz), 1e-6)
            reach = np.ones_like(q)
            for (sx, sy, sz), length in zip(self.spike_directions, self.spike_lengths):
                cosine = np.maximum((sx * dx + sy * dy + sz * dz) / norm, 0)
                reach += length * cosine ** self.spike_sharpness
            q = q / reach
        if self.roughness and self.texture is not None:
            q = q - self.roughness * self.texture(x, y, z)
        return q


@dataclass
class Cylinder:
    """An elliptic cylinder along the body (z) axis between ``z_range``; ``q`` is its in-plane normalized radius."""

    center_xy: tuple[float, float]
    semi_xy: tuple[float, float]
    z_range: tuple[float, float] = (-1e4, 1e4)

    def bounds(self) -> Bounds:
        (cx, cy), (a, b), (z0, z1) = self.center_xy, self.semi_xy, self.z_range
        return np.array([cx - a, cy - b, z0], np.float32), np.array([cx + a, cy + b, z1], np.float32)

    def q(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        (cx, cy), (a, b), (z0, z1) = self.center_xy, self.semi_xy, self.z_range
        q = np.sqrt(((x - cx) / a) ** 2 + ((y - cy) / b) ** 2)
        return np.where((z >= z0) & (z <= z1), q, np.float32(np.inf))


@dataclass
class Tube:
    """A tube of constant radius around a polyline; ``q`` is the distance to the centre line over the radius."""

    points: np.ndarray  # (m, 3)
    radius: float

    def __post_init__(self) -> None:
        self.points = np.asarray(self.points, dtype=np.float32)

    def bounds(self) -> Bounds:
        return self.points.min(axis=0) - self.radius, self.points.max(axis=0) + self.radius

    def q(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        best = None
        for a, b in zip(self.points[:-1], self.points[1:]):
            d = b - a
            px, py, pz = x - a[0], y - a[1], z - a[2]
            t = np.clip((px * d[0] + py * d[1] + pz * d[2]) / float(d @ d), 0, 1)
            dist2 = (px - t * d[0]) ** 2 + (py - t * d[1]) ** 2 + (pz - t * d[2]) ** 2
            best = dist2 if best is None else np.minimum(best, dist2)
        return np.sqrt(best) / self.radius


@dataclass
class Box:
    """An axis-aligned box (world axes); ``q`` is the largest per-axis offset over the half size."""

    center: np.ndarray
    half: np.ndarray

    def bounds(self) -> Bounds:
        c, h = np.asarray(self.center, np.float32), np.asarray(self.half, np.float32)
        return c - h, c + h

    def q(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        (cx, cy, cz), (hx, hy, hz) = self.center, self.half
        return np.maximum(np.maximum(np.abs(x - cx) / hx, np.abs(y - cy) / hy), np.abs(z - cz) / hz)


@dataclass
class Band:
    """The part of ``base`` whose normalized radius lies in [low, high]: shells, walls, rings."""

    base: Ellipsoid | Cylinder | Tube
    low: float
    high: float

    def bounds(self) -> Bounds:
        low, high = self.base.bounds()
        center = (low + high) / 2
        scale = max(self.high, 1.0)
        return center - (center - low) * scale, center + (high - center) * scale

    def q(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        middle, half = (self.low + self.high) / 2, (self.high - self.low) / 2
        return np.abs(self.base.q(x, y, z) - middle) / half


@dataclass
class Intersection:
    """Inside where every part is inside."""

    parts: tuple

    def bounds(self) -> Bounds:
        boxes = [part.bounds() for part in self.parts]
        return np.max([b[0] for b in boxes], axis=0), np.min([b[1] for b in boxes], axis=0)

    def q(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        return np.maximum.reduce([part.q(x, y, z) for part in self.parts])


@dataclass
class Vessels:
    """A tangle of curved tubes: where two independent smooth fields are both near zero, inside ``region``."""

    first: RandomField
    second: RandomField
    width: float
    region: Bounds

    def bounds(self) -> Bounds:
        return self.region

    def q(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        return np.maximum(np.abs(self.first(x, y, z)), np.abs(self.second(x, y, z))) / self.width


@dataclass
class Hoops:
    """Rib-like hoops: a band of a body cylinder, repeated along z with ``period`` and ``width`` (mm)."""

    band: Band
    period: float
    width: float

    def bounds(self) -> Bounds:
        return self.band.bounds()

    def q(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        offset = np.abs((z / self.period) % 1.0 - 0.5) * self.period / (self.width / 2)
        return np.maximum(self.band.q(x, y, z), offset)


def rotation(rng: np.random.Generator, max_degrees: float) -> np.ndarray:
    """A random rotation about a random axis by at most ``max_degrees`` (Rodrigues' formula)."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = np.deg2rad(rng.uniform(-max_degrees, max_degrees))
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross
