"""Tumors per category: where they grow, their shape and compartments, and which compartments the mask covers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .anatomy import Anatomy
from .grid import Paint, labels_at
from .shapes import Band, Ellipsoid, Intersection, RandomField, rotation
from .tissues import L, T

CANDIDATES = 4000


@dataclass
class TumorPlan:
    """Lesion paints (on the lesion map, restricted by the organ map), the point to centre the scan on,
    and which lesion kinds form the tumor mask (per modality where they differ)."""

    paints: list[Paint]
    center: np.ndarray
    mask_kinds: tuple[int, ...]
    core_kinds: tuple[int, ...] | None = None  # for T1/T1c, when the visible tumor is only the core

    def kinds_for(self, modality: str) -> tuple[int, ...]:
        if self.core_kinds is not None and modality in ("MR-T1", "MR-T1c"):
            return self.core_kinds
        return self.mask_kinds


def sample_point(rng: np.random.Generator, anatomy: Anatomy, organ: str, labels: tuple[int, ...],
                 accept: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """A random world point inside ``organ``'s bounds whose anatomy label is one of ``labels``."""
    low, high = anatomy.organs[organ].bounds()
    points = rng.uniform(low, high, size=(CANDIDATES, 3))
    ok = np.isin(labels_at(anatomy.paints, points), labels)
    if accept is not None:
        ok &= accept(points)
    if not ok.any():
        raise RuntimeError(f"no point of labels {labels} found in the {organ}")
    return points[rng.choice(np.flatnonzero(ok))]


def _blob(rng: np.random.Generator, center: np.ndarray, radius: float, roughness: float = 0.1,
          wavelength: float | None = None) -> Ellipsoid:
    """A lobulated, slightly elongated ball."""
    semi = radius * rng.uniform(0.8, 1.2, size=3)
    return Ellipsoid(center, semi, rotation(rng, 90), roughness, RandomField(rng, wavelength or 1.5 * radius))


def _inner_q(shape: object) -> Callable[[np.ndarray], np.ndarray]:
    return lambda p: shape.q(p[:, 0], p[:, 1], p[:, 2])


def liver_tumor(rng: np.random.Generator, anatomy: Anatomy) -> TumorPlan:
    count = int(rng.choice([1, 1, 1, 2, 3, 4]))
    kind = L["hypodense lesion"] if rng.random() < 0.7 else L["hyperdense lesion"]
    paints, centers = [], []
    for _ in range(count):
        center = sample_point(rng, anatomy, "liver", (T["liver"],))
        radius = rng.uniform(6, 28) / np.sqrt(count)
        levels = ((1.0, kind), (0.45, L["necrosis"])) if radius > 16 and rng.random() < 0.5 else ((1.0, kind),)
        paints.append(Paint(_blob(rng, center, radius), levels, (T["liver"], T["hepatic vessel"])))
        centers.append(center)
    return TumorPlan(paints, centers[0], (kind, L["necrosis"]))


def hepatic_vessel_tumor(rng: np.random.Generator, anatomy: Anatomy) -> TumorPlan:
    center = sample_point(rng, anatomy, "liver", (T["hepatic vessel"],))
    blob = _blob(rng, center, rng.uniform(8, 22), roughness=0.15)
    return TumorPlan([Paint(blob, ((1.0, L["hypodense lesion"]),), (T["liver"], T["hepatic vessel"]))], center,
                     (L["hypodense lesion"],))


def kidney_tumor(rng: np.random.Generator, anatomy: Anatomy) -> TumorPlan:
    """Exophytic: centred near the kidney's surface, bulging into the perirenal fat; heterogeneous."""
    kidney = anatomy.organs["kidney"]
    center = sample_point(rng, anatomy, "kidney", (T["kidney"],), lambda p: _inner_q(kidney)(p) > 0.7)
    radius = rng.uniform(12, 32)
    levels = ((1.0, L["heterogeneous tumor"]), (0.4, L["necrosis"])) if rng.random() < 0.4 else \
        ((1.0, L["heterogeneous tumor"]),)
    blob = _blob(rng, center, radius, roughness=0.12)
    return TumorPlan([Paint(blob, levels, (T["kidney"], T["fat"]))], center,
                     (L["heterogeneous tumor"], L["necrosis"]))


def kidney_cyst(rng: np.random.Generator, anatomy: Anatomy) -> TumorPlan:
    kidney = anatomy.organs["kidney"]
    center = sample_point(rng, anatomy, "kidney", (T["kidney"],), lambda p: _inner_q(kidney)(p) > 0.5)
    radius = rng.uniform(6, 22)
    ball = Ellipsoid(center, radius * rng.uniform(0.92, 1.08, size=3), rotation(rng, 90))
    return TumorPlan([Paint(ball, ((1.0, L["cyst"]),), (T["kidney"], T["fat"]))], center, (L["cyst"],))


def pancreatic_tumor(rng: np.random.Generator, anatomy: Anatomy) -> TumorPlan:
    center = sample_point(rng, anatomy, "pancreas", (T["pancreas"],))
    blob = _blob(rng, center, rng.uniform(8, 18), roughness=0.18)
    return TumorPlan([Paint(blob, ((1.0, L["hypodense lesion"]),), (T["pancreas"],))], center,
                     (L["hypodense lesion"],))


def lung_tumor(rng: np.random.Generator, anatomy: Anatomy) -> TumorPlan:
    """Solid and spiculated: radial spikes out of a lobulated ball."""
    center = sample_point(rng, anatomy, "lung", (T["lung"],))
    spikes = int(rng.integers(6, 16))
    directions = rng.normal(size=(spikes, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    radius = rng.uniform(5, 22)
    nodule = Ellipsoid(center, radius * rng.uniform(0.85, 1.15, size=3), rotation(rng, 90), 0.1,
                       RandomField(rng, 1.5 * radius), directions, rng.uniform(0.3, 1.2, size=spikes))
    return TumorPlan([Paint(nodule, ((1.0, L["solid tumor"]),), (T["lung"], T["lung vessel"]))], center,
                     (L["solid tumor"],))


def colon_tumor(rng: np.random.Generator, anatomy: Anatomy) -> TumorPlan:
    """Wall thickening: a thick ring of the colon wall over a few centimetres, narrowing the lumen."""
    colon = anatomy.organs["colon"]
    center = sample_point(rng, anatomy, "colon", (T["colon wall"],))
    thickness = rng.uniform(6, 14)
    ring = Band(colon, 1 - thickness / colon.radius, 1 + rng.uniform(1, 4) / colon.radius)
    segment = Ellipsoid(center, np.full(3, rng.uniform(15, 30)))
    paint = Paint(Intersection((ring, segment)), ((1.0, L["solid tumor"]),),
                  (T["colon wall"], T["colon lumen"], T["fat"]))
    return TumorPlan([paint], center, (L["solid tumor"],))


def bone_lesion(rng: np.random.Generator, anatomy: Anatomy) -> TumorPlan:
    center = sample_point(rng, anatomy, "bone", (T["bone marrow"],))
    kind = L["lytic lesion"] if rng.random() < 0.6 else L["sclerotic lesion"]
    blob = _blob(rng, center, rng.uniform(5, 14), roughness=0.1)
    return TumorPlan([Paint(blob, ((1.0, kind),), (T["bone marrow"], T["cortical bone"]))], center, (kind,))


def brain_glioma(rng: np.random.Generator, anatomy: Anatomy) -> TumorPlan:
    """Edema following the white matter around a core: enhancing rim and necrosis, or non-enhancing."""
    brain = anatomy.organs["brain"]
    center = sample_point(rng, anatomy, "brain", (T["white matter"],), lambda p: _inner_q(brain)(p) < 0.75)
    core = rng.uniform(8, 22)
    edema = _blob(rng, center, core * rng.uniform(1.5, 2.3), roughness=0.25, wavelength=30)
    paints = [Paint(edema, ((1.0, L["edema"]),), (T["white matter"],))]
    if rng.random() < 0.75:
        rim = rng.uniform(2.5, 6) / core
        core_kinds = (L["enhancing rim"], L["necrosis"])
        paints.append(Paint(_blob(rng, center, core, 0.12), ((1.0, L["enhancing rim"]), (1 - rim, L["necrosis"])),
                            (T["white matter"], T["gray matter"])))
    else:
        core_kinds = (L["solid tumor"],)
        paints.append(Paint(_blob(rng, center, core, 0.12), ((1.0, L["solid tumor"]),),
                            (T["white matter"], T["gray matter"])))
    return TumorPlan(paints, center, (L["edema"], *core_kinds), core_kinds)


PLANNERS: dict[str, Callable[[np.random.Generator, Anatomy], TumorPlan]] = {
    "liver tumor": liver_tumor,
    "hepatic vessel tumor": hepatic_vessel_tumor,
    "kidney tumor": kidney_tumor,
    "kidney cyst": kidney_cyst,
    "pancreatic tumor": pancreatic_tumor,
    "lung tumor": lung_tumor,
    "colon tumor": colon_tumor,
    "brain glioma": brain_glioma,
    "bone lesion": bone_lesion,
}


def healthy(rng: np.random.Generator, anatomy: Anatomy) -> TumorPlan:
    """No lesion; the scan is centred on a random organ."""
    organ = str(rng.choice([name for name in anatomy.organs if name != "body"]))
    low, high = anatomy.organs[organ].bounds()
    return TumorPlan([], (low + high) / 2, ())
