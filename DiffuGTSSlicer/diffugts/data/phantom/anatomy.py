"""Randomized anatomy in world millimetres (LPS: x to the patient's left, y posterior, z superior).

A torso (CT/MR chest, abdomen, pelvis) and a head (brain MR). Each is a list of Paint operations in
order, so later organs are carved into the tissue painted before them, plus the named organ shapes
that tumors are placed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .grid import Paint
from .shapes import Band, Box, Cylinder, Ellipsoid, Hoops, RandomField, Tube, Vessels, rotation
from .tissues import T

TORSO, HEAD = "torso", "head"
FOV_RANGE_MM = {TORSO: (100.0, 500.0), HEAD: (100.0, 260.0)}


@dataclass
class Anatomy:
    region: str
    paints: list[Paint]
    organs: dict[str, object]  # name -> shape, for placing tumors


def _jitter(rng: np.random.Generator, values: tuple[float, ...], scale: float, spread: float = 0.06) -> np.ndarray:
    return np.asarray(values, dtype=float) * scale * rng.uniform(1 - spread, 1 + spread, size=len(values))


def build_torso(rng: np.random.Generator) -> Anatomy:
    s = rng.uniform(0.88, 1.12)  # body habitus
    fat_mm, muscle_mm, skin_mm = rng.uniform(8, 30), rng.uniform(8, 14), 2.0
    body = Cylinder((0.0, 0.0), tuple(_jitter(rng, (165.0, 115.0), s)))
    b = body.semi_xy[1]
    muscle_q, visceral_q = 1 - (skin_mm + fat_mm) / b, 1 - (skin_mm + fat_mm + muscle_mm) / b
    inner = (T["fat"],)
    soft = (T["fat"], T["muscle"])

    lungs = [Ellipsoid(_jitter(rng, (side * 80, 5, 150), s), _jitter(rng, (62, 85, 115), s)) for side in (-1, 1)]
    lung_box = (np.minimum(*(l.bounds()[0] for l in lungs)), np.maximum(*(l.bounds()[1] for l in lungs)))
    liver = Ellipsoid(_jitter(rng, (-65, -5, -5), s), _jitter(rng, (95, 80, 75), s), rotation(rng, 10))
    spleen = Ellipsoid(_jitter(rng, (85, 45, 15), s), _jitter(rng, (38, 28, 55), s), rotation(rng, 15))
    kidneys = [Ellipsoid(_jitter(rng, (side * 72, 55, -55 + 5 * side), s), _jitter(rng, (28, 24, 55), s),
                         rotation(rng, 20)) for side in (-1, 1)]
    pancreas = Tube(np.array([(-25, 5, -30), (15, 15, -20), (65, 35, -5)]) * s, rng.uniform(11, 15) * s)
    colon_path = np.array([(-85, 0, -150), (-85, 0, -60), (-70, -35, -35), (65, -35, -30), (80, 10, -40),
                           (85, 10, -150), (20, -10, -190)]) * s
    colon = Tube(colon_path + rng.normal(0, 4, size=colon_path.shape), rng.uniform(18, 25) * s)
    wall_q = 1 - rng.uniform(2, 4) / colon.radius
    vertebra = Cylinder((0.0, 58 * s), (22 * s, 19 * s))
    pelvis = [Ellipsoid(_jitter(rng, (side * 95, 40, -200), s), _jitter(rng, (45, 15, 50), s), rotation(rng, 15))
              for side in (-1, 1)]
    hepatic = Vessels(RandomField(rng, 45), RandomField(rng, 45), 0.22, liver.bounds())
    lung_vessels = Vessels(RandomField(rng, 40), RandomField(rng, 40), 0.18, lung_box)

    paints = [
        Paint(body, ((1.0, T["skin"]), (1 - skin_mm / b, T["fat"]), (muscle_q, T["muscle"]), (visceral_q, T["fat"]))),
        Paint(Hoops(Band(body, visceral_q - 0.07, visceral_q - 0.01), 28 * s, 9 * s), ((1.0, T["cortical bone"]),),
              soft),
        *[Paint(lung, ((1.0, T["lung"]),), inner) for lung in lungs],
        Paint(lung_vessels, ((1.0, T["lung vessel"]),), (T["lung"],)),
        Paint(Ellipsoid(_jitter(rng, (15, -25, 95), s), _jitter(rng, (55, 50, 55), s), rotation(rng, 15)),
              ((1.0, T["muscle"]), (0.85, T["blood"])), (T["fat"], T["lung"], T["lung vessel"])),
        Paint(vertebra, ((1.0, T["cortical bone"]), (0.8, T["bone marrow"])), soft),
        Paint(Hoops(Band(vertebra, 0.0, 1.05), 30 * s, 6 * s), ((1.0, T["muscle"]),),  # intervertebral discs
              (T["cortical bone"], T["bone marrow"])),
        Paint(Cylinder((0.0, 88 * s), (8 * s, 8 * s)), ((1.6, T["cortical bone"]), (1.0, T["csf"])), soft),
        Paint(Cylinder((10 * s, 30 * s), (12 * s, 12 * s), (-140 * s, 120 * s)), ((1.0, T["blood"]),), inner),
        *[Paint(Cylinder((side * 40 * s, 55 * s), (18 * s, 18 * s), (-200 * s, -40 * s)), ((1.0, T["muscle"]),),
                inner) for side in (-1, 1)],
        *[Paint(bone, ((1.0, T["cortical bone"]), (0.7, T["bone marrow"])), soft) for bone in pelvis],
        Paint(liver, ((1.0, T["liver"]),), inner),
        Paint(hepatic, ((1.0, T["hepatic vessel"]),), (T["liver"],)),
        Paint(spleen, ((1.0, T["spleen"]),), inner),
        *[Paint(kidney, ((1.0, T["kidney"]), (0.45, T["fat"])), inner) for kidney in kidneys],
        Paint(pancreas, ((1.0, T["pancreas"]),), inner),
        Paint(colon, ((1.0, T["colon wall"]), (wall_q, T["colon lumen"])), inner),
        Paint(Ellipsoid(_jitter(rng, (0, -45, -215), s), _jitter(rng, (45, 35, 35), s)),
              ((1.0, T["muscle"]), (0.92, T["bladder"])), inner),
    ]
    organs = {"liver": liver, "spleen": spleen, "kidney": kidneys[int(rng.integers(2))], "pancreas": pancreas,
              "colon": colon, "lung": lungs[int(rng.integers(2))], "bone": vertebra, "body": body}
    return Anatomy(TORSO, paints, organs)


def build_head(rng: np.random.Generator) -> Anatomy:
    s = rng.uniform(0.9, 1.1)
    head = Ellipsoid((0.0, 0.0, 0.0), _jitter(rng, (72, 92, 88), s), rotation(rng, 5))
    a = float(head.semi_axes[0])
    white = Ellipsoid(head.center, head.semi_axes * rng.uniform(0.66, 0.72), head.rotation, roughness=0.07,
                      texture=RandomField(rng, 22, waves=8))
    paints = [
        Paint(head, ((1.0, T["skin"]), (1 - 3 / a, T["fat"]), (1 - 6 / a, T["cortical bone"]), (1 - 13 / a, T["csf"]),
                     (1 - 16 / a, T["gray matter"]))),
        Paint(white, ((1.0, T["white matter"]),), (T["gray matter"],)),
        Paint(Box(np.array([0.0, 0.0, 45.0 * s]), np.array([1.5, 95.0 * s, 45.0 * s])), ((1.0, T["csf"]),),
              (T["gray matter"], T["white matter"])),
        *[Paint(Ellipsoid(_jitter(rng, (side * 11, -5, 15), s), _jitter(rng, (7, 28, 13), s), rotation(rng, 10)),
                ((1.0, T["ventricle"]),), (T["white matter"], T["gray matter"])) for side in (-1, 1)],
    ]
    return Anatomy(HEAD, paints, {"brain": white, "body": head})
