"""Realism of tumors synthesized into real scans: a sheet per category (synthetic lesions next to the real ones of
../shared/data), and lesion statistics for both.

Run: python benchmarks/bench_synth_realism.py [--corpus /work/corpus] [--data ../shared/data] [--per-split 3]
Writes benchmarks/realism/<category>.png and benchmarks/realism/stats.md (+ stats.json).

Synthetic lesions come from ``diffugts data synth`` on the corpus's tumor-free hosts (both splits), plus, for
the brain categories, lesions synthesized into the tumor-free side of the real glioma scans (BraTS 2013 case,
TCGA-LGG cases), so FLAIR and T1c, which no tumor-free host has, are shown too. Statistics per lesion:
- contrast: lesion median minus the median of its surroundings (a 2-8 mm ring outside the mask, within the
  organ or foreground, gas left out except in the lung): HU on CT; on MR as a robust z (over 1.4826 x MAD of
  the ring);
- edge: the 10-90% rise distance (mm) of the median intensity profile across the boundary (signed distance
  bins of 0.5 mm), where the contrast is above twice the noise;
- texture: robust SD inside (1.4826 x MAD of the interior) over the surroundings' noise SD (the high-pass
  measure the synthesizer matches: diffugts.data.synth.texture.measure_noise), so about 1 = host noise;
- volume in mL.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

from diffugts.data import read_dataset  # noqa: E402
from diffugts.data.categories import CATEGORIES  # noqa: E402
from diffugts.data.synth import RECIPES, synthesize, write_synth_set  # noqa: E402
from diffugts.data.synth.texture import MAD_TO_SD, measure_noise  # noqa: E402
from diffugts.errors import DiffuGTSError  # noqa: E402
from diffugts.evaluation.baselines import body_mask  # noqa: E402
from diffugts.io import Volume, read_volume, to_ras  # noqa: E402

HERE = Path(__file__).resolve().parent
RING_MM = (2.0, 8.0)
BIN_MM = 0.5
GAS_HU = -300.0
PER_ROW = 6
CT_WINDOWS = {"lung tumor": (-1000, 250), "bone lesion": (-250, 1250), "colon tumor": (-400, 300)}
BRAIN = ("brain glioma", "brain metastasis", "meningioma")


@dataclass
class Lesion:
    category: str
    label: str  # where it comes from, shown under its picture
    kind: str  # "synthetic" or "real"
    modality: str
    image: Volume
    mask: np.ndarray  # bool, on image's grid
    region: np.ndarray  # bool: the organ or foreground its surroundings are measured in


# ---------------------------------------------------------------- lesions


def synthetic_from_corpus(corpus: Path, per_split: int, seed: int, scratch: Path) -> list[Lesion]:
    lesions = []
    for category in CATEGORIES:
        for split in ("validation", "train"):
            out = scratch / f"{category.replace(' ', '_')}_{split}"
            try:
                write_synth_set(corpus, out, per_split, [category], seed=seed, split=split)
            except DiffuGTSError as error:
                print(f"  {category} ({split}): {error}")
                continue
            for case in read_dataset(out):
                images, truth = case.load()
                image = next(iter(images.values()))
                organ = read_volume(case.organ_mask).array > 0
                host = case.notes["source"].split("corpus case ")[-1].split(" ")[0]
                lesions.append(Lesion(category, f"{host}", "synthetic", case.modality, image,
                                      truth.array > 0, organ))
    return lesions


def stripped_brain(image: Volume) -> np.ndarray:
    """The brain of a skull-stripped scan: whatever differs from the background (the corner voxel's value)."""
    return ndimage.binary_fill_holes(image.array != image.array[0, 0, 0])


def _glioma_scans(data: Path) -> list[tuple[str, dict[str, Volume], np.ndarray]]:
    """Real glioma scans (name, {sequence: image}, whole-tumor mask) whose tumor-free side can host lesions."""
    real, train = data / "real", data / "train" / "mr"
    scans = [("brats13", {"MR-FLAIR": read_volume(real / "brats13_pat0005_flair.nii.gz"),
                          "MR-T1c": read_volume(real / "brats13_pat0005_t1c.nii.gz")},
              read_volume(real / "brats13_pat0005_wt_mask.nii.gz").array > 0)]
    for name in ("tcga_du_7294", "tcga_fg_6692"):
        scans.append((name, {"MR-FLAIR": read_volume(train / f"{name}_flair.nii.gz"),
                             "MR-T1c": read_volume(train / f"{name}.nii.gz")},
                       read_volume(train / f"{name}_tumor.nii.gz").array > 0))
    return scans


def synthetic_in_glioma_scans(data: Path, seed: int) -> list[Lesion]:
    """Brain lesions in the other hemisphere of real FLAIR/T1c pairs (25 mm or more from the real tumor): one
    geometry, drawn on both sequences."""
    lesions = []
    for number, (name, images, tumor) in enumerate(_glioma_scans(data)):
        first = next(iter(images.values()))
        brain = ndimage.binary_erosion(stripped_brain(first), iterations=2)
        spacing = first.spacing[::-1]
        near_tumor = ndimage.distance_transform_edt(~tumor, sampling=spacing) < 25
        columns = np.arange(brain.shape[2])[None, None, :]
        middle = np.nonzero(brain)[2].mean()
        other_side = columns > middle if np.nonzero(tumor)[2].mean() < middle else columns < middle
        region = brain & ~near_tumor & other_side
        for c, category in enumerate(BRAIN):
            for modality, image in images.items():
                rng = np.random.default_rng([seed, number, c])
                made = synthesize(rng, image, region, modality, RECIPES[category])
                if made is not None:
                    lesions.append(Lesion(category, f"in {name} ({modality[3:]})", "synthetic", modality,
                                          made.image, made.mask.array > 0, brain))
    return lesions


def real_lesions(data: Path) -> list[Lesion]:
    real, train = data / "real", data / "train" / "mr"
    lesions = []

    def add(category: str, label: str, modality: str, image_path: Path, mask: np.ndarray | Path, region) -> None:
        image = read_volume(image_path)
        image.modality = modality
        mask_array = read_volume(mask).array > 0 if isinstance(mask, Path) else mask
        lesions.append(Lesion(category, label, "real", modality, image, mask_array, region(image)))

    lung = lambda image: (image.array < -400) & body_mask(image)  # noqa: E731
    add("lung tumor", "pyrad_lung1", "CT", real / "pyrad_lung1_ct.nii.gz", real / "pyrad_lung1_ct_mask.nii.gz", lung)
    add("lung tumor", "ibsi_phantom (GTV)", "CT", real / "ibsi_phantom_ct.nii.gz", real / "ibsi_phantom_ct_mask.nii.gz",
        lung)
    add("brain glioma", "brats13 FLAIR (whole)", "MR-FLAIR", real / "brats13_pat0005_flair.nii.gz",
        real / "brats13_pat0005_wt_mask.nii.gz", stripped_brain)
    add("brain glioma", "brats13 T1c (core)", "MR-T1c", real / "brats13_pat0005_t1c.nii.gz",
        real / "brats13_pat0005_tc_mask.nii.gz", stripped_brain)
    for name in ("tcga_du_7294", "tcga_fg_6692"):
        labels = read_volume(train / f"{name}_tumor.nii.gz").array
        add("brain glioma", f"{name} FLAIR (whole)", "MR-FLAIR", train / f"{name}_flair.nii.gz", labels > 0,
            stripped_brain)
        add("brain glioma", f"{name} T1c (core)", "MR-T1c", train / f"{name}.nii.gz", np.isin(labels, (1, 4)),
            stripped_brain)
    add("brain glioma", "pyrad_brain1 T1c (type unknown)", "MR-T1c", real / "pyrad_brain1_mr_t1c.nii.gz",
        real / "pyrad_brain1_mr_t1c_mask.nii.gz", body_mask)
    add("breast mass", "pyrad_breast1 T1", "MR-T1", real / "pyrad_breast1_mr_t1.nii.gz",
        real / "pyrad_breast1_mr_t1_mask.nii.gz", lambda image: image.array > 0)
    return lesions


# ---------------------------------------------------------------- statistics


def statistics(lesion: Lesion) -> dict[str, float | None]:
    values = lesion.image.array.astype(np.float32)
    spacing = lesion.image.spacing[::-1]
    outside = ndimage.distance_transform_edt(~lesion.mask, sampling=spacing)
    inside = ndimage.distance_transform_edt(lesion.mask, sampling=spacing)
    ring = (outside >= RING_MM[0]) & (outside <= RING_MM[1]) & lesion.region & ~lesion.mask
    if lesion.modality == "CT" and lesion.category != "lung tumor":
        ring &= values > GAS_HU  # bowel gas is not the tissue a lesion is seen against
    interior = lesion.mask & (inside > min(spacing[1:]))
    if interior.sum() < 10:
        interior = lesion.mask
    if ring.sum() < 10:
        ring = (outside > 0) & (outside <= RING_MM[1])
    lesion_median, ring_median = float(np.median(values[interior])), float(np.median(values[ring]))
    ring_sd = MAD_TO_SD * float(np.median(np.abs(values[ring] - ring_median)))
    box = _box(lesion.mask, outside, RING_MM[1] + 4)
    noise = measure_noise(values[box], ring[box]).sd or ring_sd
    contrast = lesion_median - ring_median
    texture = MAD_TO_SD * float(np.median(np.abs(values[interior] - lesion_median)))
    edge = _rise_distance(values, np.where(lesion.mask, -inside, outside), lesion_median, ring_median) \
        if abs(contrast) > 2 * noise else None
    return {"contrast_hu": contrast if lesion.modality == "CT" else None,
            "contrast_z": contrast / ring_sd if ring_sd > 0 else None,
            "edge_mm": edge, "texture_sd": texture, "texture_over_noise": texture / noise if noise > 0 else None,
            "volume_ml": float(lesion.mask.sum() * lesion.image.voxel_volume_ml)}


def _box(mask: np.ndarray, outside: np.ndarray, margin_mm: float) -> tuple[slice, ...]:
    near = outside <= margin_mm
    where = np.nonzero(near)
    return tuple(slice(int(w.min()), int(w.max()) + 1) for w in where)


def _rise_distance(values: np.ndarray, signed: np.ndarray, inner: float, outer: float) -> float | None:
    """Distance (mm) between the 90% and 10% points of the median profile from inner to outer level."""
    band = (signed > -6) & (signed < 8)
    bins = np.floor(signed[band] / BIN_MM).astype(int)
    order = np.unique(bins)
    profile = np.array([np.median(values[band][bins == b]) for b in order])
    centers = (order + 0.5) * BIN_MM
    fraction = (profile - outer) / (inner - outer)
    fraction = np.minimum.accumulate(np.clip(fraction, 0, 1))  # monotone from inside out
    try:
        d90 = np.interp(0.9, fraction[::-1], centers[::-1])
        d10 = np.interp(0.1, fraction[::-1], centers[::-1])
    except ValueError:
        return None
    return float(max(d10 - d90, 0.0))


# ---------------------------------------------------------------- sheets


def _axial(lesion: Lesion) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """The axial slice through the lesion's largest cross-section, cropped around it (RAS, patient right left)."""
    image, _ = to_ras(lesion.image)
    mask, _ = to_ras(lesion.image.like(lesion.mask.astype(np.uint8)))
    k = int(np.argmax(mask.array.sum(axis=(1, 2))))
    rows, cols = np.nonzero(mask.array[k])
    sx, sy = image.spacing[0], image.spacing[1]
    half_mm = max(20.0, 1.4 * max(np.ptp(rows) * sy, np.ptp(cols) * sx, 1.0))
    cy, cx = int(rows.mean()), int(cols.mean())
    hy, hx = int(np.ceil(half_mm / sy)), int(np.ceil(half_mm / sx))
    y0, y1 = max(cy - hy, 0), min(cy + hy + 1, image.array.shape[1])
    x0, x1 = max(cx - hx, 0), min(cx + hx + 1, image.array.shape[2])
    picture = image.array[k, y0:y1, x0:x1].astype(np.float32)[:, ::-1]
    outline = mask.array[k, y0:y1, x0:x1][:, ::-1]
    extent = (0, (x1 - x0) * sx, 0, (y1 - y0) * sy)
    return picture, outline, extent


def _window(lesion: Lesion, picture: np.ndarray) -> tuple[float, float]:
    if lesion.modality == "CT":
        return CT_WINDOWS.get(lesion.category, (-160, 240))
    values = lesion.image.array[lesion.region]
    return tuple(float(v) for v in np.percentile(values, (0.5, 99.8)))


def sheet(category: str, lesions: list[Lesion], path: Path) -> None:
    synthetic = [item for item in lesions if item.kind == "synthetic"][:PER_ROW * 2]
    real = [item for item in lesions if item.kind == "real"][:PER_ROW]
    rows = [synthetic[:PER_ROW], synthetic[PER_ROW:], real]
    rows = [row for row in rows if row]
    columns = max(len(row) for row in rows)
    figure, axes = plt.subplots(2 * len(rows), columns, figsize=(1.45 * columns, 3.05 * len(rows)), squeeze=False)
    for r, row in enumerate(rows):
        for c in range(columns):
            top, bottom = axes[2 * r, c], axes[2 * r + 1, c]
            top.axis("off")
            bottom.axis("off")
            if c >= len(row):
                continue
            lesion = row[c]
            picture, outline, extent = _axial(lesion)
            low, high = _window(lesion, picture)
            for axis in (top, bottom):
                axis.imshow(picture, cmap="gray", vmin=low, vmax=high, origin="lower", extent=extent,
                            interpolation="nearest")
            bottom.contour(outline, [0.5], colors="red" if lesion.kind == "synthetic" else "lime", linewidths=0.7,
                           origin="lower", extent=extent)
            top.set_title(f"{lesion.kind[:5]} {lesion.modality}\n{lesion.label[:24]}", fontsize=5.5)
    figure.suptitle(f"{category}: synthetic (red outline) vs real (green)", fontsize=8)
    figure.tight_layout(rect=(0, 0, 1, 0.97), pad=0.2, h_pad=0.3, w_pad=0.2)
    figure.savefig(path, dpi=72)
    plt.close(figure)


# ---------------------------------------------------------------- table


def _summary(values: list[float | None], digits: int = 1) -> str:
    numbers = [v for v in values if v is not None]
    if not numbers:
        return "—"
    if len(numbers) == 1:
        return f"{numbers[0]:.{digits}f}"
    return f"{np.median(numbers):.{digits}f} [{min(numbers):.{digits}f}, {max(numbers):.{digits}f}]"


def table(rows: list[dict]) -> str:
    header = ("| category | lesions | modality | n | contrast HU | contrast z | edge 10-90% mm | texture SD / noise "
              "| volume mL |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
    lines = []
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for row in rows:
        modality = "CT" if row["modality"] == "CT" else row["modality"] if row["modality"] in (
            "MR-FLAIR", "MR-T1c") else "MR (T1/other)"
        groups.setdefault((row["category"], row["kind"], modality), []).append(row)
    for (category, kind, modality), members in sorted(groups.items()):
        lines.append(f"| {category} | {kind} | {modality} | {len(members)} | "
                     f"{_summary([m['contrast_hu'] for m in members], 0)} | "
                     f"{_summary([m['contrast_z'] for m in members])} | {_summary([m['edge_mm'] for m in members])} | "
                     f"{_summary([m['texture_over_noise'] for m in members])} | "
                     f"{_summary([m['volume_ml'] for m in members], 2)} |")
    return header + "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path("/work/corpus"))
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--per-split", type=int, default=3, help="synthetic cases per category and corpus split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "realism")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        lesions = synthetic_from_corpus(args.corpus, args.per_split, args.seed, Path(scratch))
        lesions += synthetic_in_glioma_scans(args.data, args.seed)
        lesions += real_lesions(args.data)
        rows = []
        for lesion in lesions:
            rows.append({"category": lesion.category, "kind": lesion.kind, "modality": lesion.modality,
                         "label": lesion.label, **statistics(lesion)})
        for category in CATEGORIES:
            mine = [lesion for lesion in lesions if lesion.category == category]
            if mine:
                sheet(category, mine, args.out / f"{category.replace(' ', '_')}.png")
    (args.out / "stats.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    text = table(rows)
    (args.out / "stats.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
