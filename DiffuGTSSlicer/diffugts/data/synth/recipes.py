"""Per category: where a synthesized lesion goes, how big it is, its shape and its compartments' intensities.

Intensities are relative to the host tissue measured in the scan itself (``Level``): on CT a HU offset from
the host organ's local median (``delta``), or an absolute HU where physics fixes it (``abs``: water-dense
cysts, calcification, solid tissue in air-filled lung or fat); on MR a ratio to the host organ's signal above
the scan's background (``ratio``: 1 = as bright as the organ). Sizes are greatest diameters in mm, drawn
log-uniformly between the published range's ends (see the package docstring for the sources).
"""

from __future__ import annotations

from dataclasses import dataclass, field

DELTA, ABSOLUTE, RATIO = "delta", "abs", "ratio"
INSIDE, BORDER, DEPTH = "inside", "border", "depth"
# compartments of a lesion
TUMOR, CORE, EDEMA, CALCIFICATION = "tumor", "core", "edema", "calcification"


@dataclass(frozen=True)
class Level:
    """One intensity range: ``mode`` (delta / abs on CT, ratio on MR) between ``low`` and ``high``."""

    mode: str
    low: float
    high: float
    floor: float | None = None  # CT: never below this HU (solid tissue stays soft-tissue dense)


Looks = dict[str, dict[str, tuple[Level, ...]]]  # modality -> compartment -> options (one is drawn)


@dataclass(frozen=True)
class Recipe:
    """How to synthesize one category. ``host`` is the organ a lesion is placed in (vocabulary name, or
    "fat" / "breast" for the body regions that have no organ label)."""

    category: str
    host: str
    placement: str  # INSIDE (centre deep enough to hold most of it), BORDER (on the organ's surface), DEPTH
    diameter_mm: tuple[float, float]
    looks: Looks
    inside_fraction: float = 0.5  # INSIDE: centre at least this many radii from the organ's surface
    border_depth: tuple[float, float] = (0.0, 0.5)  # BORDER: centre this many radii below the organ's surface
    flatness: tuple[float, float] = (0.75, 1.0)  # shortest / longest semi-axis (BORDER: along the normal)
    elongation: tuple[float, float] = (1.0, 1.3)  # longest / middle semi-axis
    lobulation: tuple[float, float] = (0.05, 0.15)  # radial roughness, in radii
    deformation: tuple[float, float] = (0.08, 0.2)  # elastic displacement amplitude, in radii
    spikes: tuple[int, int] = (0, 0)  # spiculation: number of spikes (0: none)
    spike_probability: float = 0.0
    core: tuple[float, float, float] = (0.0, 0.4, 0.6)  # probability, core radius range (fraction of the tumor)
    core_min_mm: float = 20.0  # lesions smaller than this have no core
    edema: tuple[float, float, float] = (0.0, 1.5, 2.0)  # probability, edema radius range (x the tumor's)
    calcification: float = 0.0  # probability of calcified spots
    heterogeneity: tuple[float, float] = (0.5, 1.5)  # low-frequency texture SD, in units of the host's noise SD
    mass_effect: tuple[float, float] = (0.05, 0.2)  # outward push at the lesion's edge, in radii
    near: str | None = None  # prefer centres within NEAR_MM of this organ when the host map has it
    masked_edema: tuple[str, ...] = ()  # sequences on which the mask is the whole tumor (edema included)
    depth_mm: tuple[float, float] = (0.0, 0.0)  # DEPTH: centre this far below the surface, beyond the radius
    notes: tuple[str, ...] = field(default_factory=tuple)


def d(low: float, high: float, floor: float | None = None) -> Level:
    return Level(DELTA, low, high, floor)


def a(low: float, high: float) -> Level:
    return Level(ABSOLUTE, low, high)


def r(low: float, high: float) -> Level:
    return Level(RATIO, low, high)


WATER = (a(0, 15),)
CALCIFIED = (a(350, 900),)
BRAIN_WHOLE_TUMOR = ("MR-T2", "MR-FLAIR")  # glioma/metastasis masks: whole tumor here, the core on T1/T1c

RECIPES: dict[str, Recipe] = {recipe.category: recipe for recipe in (
    Recipe("liver tumor", "liver", INSIDE, (5, 120), {
        "CT": {TUMOR: (d(-70, -20, 15),) * 4 + (d(15, 40),), CORE: (a(5, 25),), CALCIFICATION: CALCIFIED},
        "MR-T1": {TUMOR: (r(0.55, 0.85),), CORE: (r(0.4, 0.6),)},
        "MR-T1c": {TUMOR: (r(0.55, 0.9),), CORE: (r(0.3, 0.5),)},
        "MR-T2": {TUMOR: (r(1.4, 2.2),), CORE: (r(2.2, 3.2),)},
    }, inside_fraction=0.6, lobulation=(0.05, 0.2), core=(0.4, 0.3, 0.6), core_min_mm=30, calcification=0.05,
        heterogeneity=(0.5, 2.5)),
    Recipe("hepatic vessel tumor", "liver", INSIDE, (10, 80), {
        "CT": {TUMOR: (d(-60, -25, 15),), CORE: (a(5, 25),)},
    }, inside_fraction=0.6, lobulation=(0.1, 0.25), core=(0.25, 0.3, 0.5), core_min_mm=35, near="vessel"),
    Recipe("kidney tumor", "kidney", BORDER, (15, 120), {
        "CT": {TUMOR: (d(-110, -40, 20),) * 3 + (d(-30, 10, 20),), CORE: (a(10, 30),), CALCIFICATION: CALCIFIED},
        "MR-T1": {TUMOR: (r(0.8, 1.05),), CORE: (r(0.5, 0.7),)},
        "MR-T1c": {TUMOR: (r(0.55, 0.9),), CORE: (r(0.3, 0.5),)},
        "MR-T2": {TUMOR: (r(1.0, 1.5),), CORE: (r(1.8, 2.6),)},
    }, flatness=(0.8, 1.0), lobulation=(0.08, 0.2), core=(0.45, 0.3, 0.6), core_min_mm=30, calcification=0.1,
        heterogeneity=(2.0, 5.0), notes=("exophytic: centred within half a radius of the kidney's surface",)),
    Recipe("kidney cyst", "kidney", INSIDE, (5, 60), {
        "CT": {TUMOR: WATER},
        "MR-T1": {TUMOR: (r(0.25, 0.45),)},
        "MR-T1c": {TUMOR: (r(0.15, 0.35),)},
        "MR-T2": {TUMOR: (r(1.8, 2.6),)},
    }, inside_fraction=0.3, flatness=(0.9, 1.0), elongation=(1.0, 1.1), lobulation=(0.0, 0.03),
        deformation=(0.0, 0.05), heterogeneity=(0.0, 0.2), mass_effect=(0.02, 0.1)),
    Recipe("pancreatic tumor", "pancreas", INSIDE, (10, 50), {
        "CT": {TUMOR: (d(-55, -15, 15),)},
        "MR-T1": {TUMOR: (r(0.55, 0.8),)},
        "MR-T1c": {TUMOR: (r(0.5, 0.8),)},
        "MR-T2": {TUMOR: (r(1.1, 1.5),)},
    }, inside_fraction=0.8, lobulation=(0.1, 0.25), deformation=(0.15, 0.3), heterogeneity=(0.5, 2.0)),
    Recipe("lung tumor", "lung", INSIDE, (5, 70), {
        "CT": {TUMOR: (a(-40, 60),), CORE: (a(-20, 20),), CALCIFICATION: CALCIFIED},
    }, inside_fraction=0.8, lobulation=(0.05, 0.2), spikes=(6, 16), spike_probability=0.6,
        core=(0.15, 0.3, 0.5), core_min_mm=35, calcification=0.05, heterogeneity=(1.0, 3.0)),
    Recipe("colon tumor", "colon", BORDER, (20, 70), {
        "CT": {TUMOR: (a(30, 80),)},
    }, flatness=(0.3, 0.5), elongation=(1.2, 1.8), lobulation=(0.05, 0.15), heterogeneity=(1.0, 2.5),
        notes=("wall thickening: a flattened mass on the colon's surface, its short axis along the normal",)),
    Recipe("bone lesion", "bone", INSIDE, (5, 40), {
        "CT": {TUMOR: (d(-260, -120, 20),) * 3 + (d(300, 700),) * 2},
        "MR-T1": {TUMOR: (r(0.3, 0.6),)},
        "MR-T2": {TUMOR: (r(1.3, 2.0),)},
    }, inside_fraction=0.5, lobulation=(0.05, 0.2), heterogeneity=(1.0, 3.0), mass_effect=(0.0, 0.03),
        notes=("lytic (60%) or sclerotic (40%) on CT",)),
    Recipe("brain glioma", "brain", INSIDE, (10, 50), {
        "MR-T1": {TUMOR: (r(0.65, 0.85),), CORE: (r(0.45, 0.65),), EDEMA: (r(0.85, 0.95),)},
        "MR-T1c": {TUMOR: (r(1.4, 2.0),) * 3 + (r(0.75, 0.95),), CORE: (r(0.45, 0.65),), EDEMA: (r(0.85, 0.95),)},
        "MR-T2": {TUMOR: (r(1.4, 1.9),), CORE: (r(1.9, 2.6),), EDEMA: (r(1.4, 1.8),)},
        "MR-FLAIR": {TUMOR: (r(1.3, 1.7),), CORE: (r(0.9, 1.3),), EDEMA: (r(1.3, 1.7),)},
    }, inside_fraction=0.7, lobulation=(0.1, 0.25), core=(0.75, 0.4, 0.7), core_min_mm=15,
        edema=(0.9, 1.4, 2.2), heterogeneity=(1.0, 3.0), mass_effect=(0.1, 0.25), masked_edema=BRAIN_WHOLE_TUMOR,
        notes=("diameter of the core; edema 1.4-2.2x it",)),
    Recipe("brain metastasis", "brain", DEPTH, (5, 30), {
        "MR-T1": {TUMOR: (r(0.7, 0.9),), CORE: (r(0.5, 0.7),), EDEMA: (r(0.85, 0.95),)},
        "MR-T1c": {TUMOR: (r(1.5, 2.2),), CORE: (r(0.45, 0.7),), EDEMA: (r(0.85, 0.95),)},
        "MR-T2": {TUMOR: (r(1.2, 1.6),), CORE: (r(1.8, 2.5),), EDEMA: (r(1.5, 1.9),)},
        "MR-FLAIR": {TUMOR: (r(1.3, 1.7),), CORE: (r(1.0, 1.4),), EDEMA: (r(1.4, 1.8),)},
    }, lobulation=(0.03, 0.1), deformation=(0.05, 0.12), core=(0.6, 0.3, 0.6), core_min_mm=8,
        edema=(0.95, 2.0, 4.0), heterogeneity=(0.5, 1.5), mass_effect=(0.1, 0.2), masked_edema=BRAIN_WHOLE_TUMOR,
        depth_mm=(2.0, 15.0), notes=("at the grey/white junction: centred just below the cortex",
                                     "edema 2-4x the lesion's diameter")),
    Recipe("meningioma", "brain", BORDER, (10, 60), {
        "CT": {TUMOR: (d(8, 25),), CALCIFICATION: CALCIFIED, EDEMA: (d(-8, -4),)},
        "MR-T1": {TUMOR: (r(0.85, 1.0),), EDEMA: (r(0.85, 0.95),)},
        "MR-T1c": {TUMOR: (r(1.5, 2.2),), EDEMA: (r(0.85, 0.95),)},
        "MR-T2": {TUMOR: (r(0.95, 1.3),), EDEMA: (r(1.4, 1.8),)},
        "MR-FLAIR": {TUMOR: (r(1.0, 1.3),), EDEMA: (r(1.3, 1.7),)},
    }, border_depth=(0.5, 0.9), flatness=(0.6, 0.85), lobulation=(0.03, 0.1), deformation=(0.05, 0.12),
        edema=(0.3, 1.3, 1.8), calcification=0.2, heterogeneity=(0.2, 0.8), mass_effect=(0.15, 0.3),
        notes=("extra-axial, dural-based: on the brain's surface, mostly pressing into it, flat base along the "
               "surface; homogeneous",)),
    Recipe("soft-tissue sarcoma", "muscle", INSIDE, (30, 150), {
        "CT": {TUMOR: (d(-30, 10, 15),), CORE: (a(10, 25),), CALCIFICATION: CALCIFIED},
        "MR-T1": {TUMOR: (r(0.9, 1.2),), CORE: (r(0.6, 0.8),)},
        "MR-T1c": {TUMOR: (r(1.3, 2.0),), CORE: (r(0.6, 0.9),)},
        "MR-T2": {TUMOR: (r(2.0, 3.0),), CORE: (r(3.0, 4.0),)},
    }, inside_fraction=0.3, elongation=(1.2, 2.0), lobulation=(0.1, 0.25), core=(0.5, 0.4, 0.7), core_min_mm=40,
        calcification=0.05, heterogeneity=(2.0, 5.0), mass_effect=(0.1, 0.25),
        notes=("in a limb or trunk muscle (gluteus, iliopsoas, back muscles where the host has them)",)),
    Recipe("lymph node", "fat", INSIDE, (10, 35), {
        "CT": {TUMOR: (a(20, 60),), CORE: (a(5, 25),)},
        "MR-T1": {TUMOR: (r(0.35, 0.55),)},
        "MR-T1c": {TUMOR: (r(0.6, 0.9),)},
        "MR-T2": {TUMOR: (r(0.5, 0.8),)},
    }, inside_fraction=0.7, flatness=(0.6, 0.9), elongation=(1.3, 2.0), lobulation=(0.0, 0.06),
        deformation=(0.03, 0.1), core=(0.15, 0.3, 0.5), core_min_mm=20, heterogeneity=(0.3, 1.0),
        mass_effect=(0.03, 0.1), near="vessel",
        notes=("oval, in fat near the vessels (aorta, iliac and other vessels when the host map has them)",
               "diameter: the long axis; enlarged = short axis 10 mm or more")),
    Recipe("breast mass", "breast", INSIDE, (5, 50), {
        "CT": {TUMOR: (a(20, 60),), CALCIFICATION: CALCIFIED},
        "MR-T1": {TUMOR: (r(0.35, 0.55),)},
        "MR-T1c": {TUMOR: (r(0.7, 1.1),)},
        "MR-T2": {TUMOR: (r(0.45, 0.8),)},
    }, inside_fraction=0.8, lobulation=(0.05, 0.25), spikes=(6, 14), spike_probability=0.4, calcification=0.1,
        heterogeneity=(0.5, 1.5), mass_effect=(0.02, 0.08),
        notes=("in the anterior chest's subcutaneous fat (no breast label: the fat in front of the chest wall)",)),
)}


def looks_for(recipe: Recipe, modality: str) -> dict[str, tuple[Level, ...]] | None:
    """The compartments' intensities on ``modality`` ("MR" of unknown sequence reads as T1), or None."""
    return recipe.looks.get("MR-T1" if modality == "MR" else modality)
