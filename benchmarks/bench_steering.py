"""Text steering and "not found": does the prompt's wording choose what the maps light, and do tumor-free
scans, noise and wrong-organ prompts stay empty?

Run: OMP_NUM_THREADS=2 python benchmarks/bench_steering.py DATASET --out DIR [--exclude-atlas-patient ts_p1]
DATASET: a synthetic-in-real set ('diffugts data synth --split validation'). Every CT case runs through the
shipped Segmenter as a user's request would (organ priors from the words, no organ mask; the hosts' own patient
atlas left out), Fast preset, with its own prompt and a prompt for a category of another organ. Per category
role of the zero-shot split (seen, unseen):
- steering: mean attention inside the tumor, own prompt / wrong-organ prompt (bar: at least 2x);
- voxel AUROC of the own prompt's attention map over the whole scan (bars: 0.90 seen, 0.80 unseen);
- presence AUROC (tumors with their own prompt vs tumor-free scans with theirs; bar 0.90), reported share of
  wrong-organ prompts, and the false-positive volume of tumor-free scans and of pure noise (bar: 5 mL each).
Writes DIR/steering.csv (one row per request) and DIR/steering.md (the tables for benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import torch

from diffugts.attention.train import select_real_cases
from diffugts.data.categories import CATEGORIES, find_category
from diffugts.data.readers import read_dataset
from diffugts.data.splits import load_splits
from diffugts.evaluation.metrics import auroc
from diffugts.segment import PRESETS, Segmenter
from diffugts.segment.calibrate import noise_volume

AUROC_NEGATIVES = 200_000  # background voxels sampled per scan for the voxel AUROC
COLUMNS = ("case", "category", "role", "kind", "prompt", "inside_mean", "voxel_auroc", "presence", "found",
           "volume_ml", "seconds")


def wrong_prompt(category: str, n: int) -> str:
    """A CT category of another organ, rotating with ``n``."""
    organ = CATEGORIES[category].organ
    others = [c for c, v in CATEGORIES.items() if v.organ != organ and "CT" in v.modalities]
    return others[n % len(others)]


def voxel_auroc(attention: np.ndarray, tumor: np.ndarray, rng: np.random.Generator) -> float:
    negatives = attention[~tumor]
    if negatives.size > AUROC_NEGATIVES:
        negatives = rng.choice(negatives, AUROC_NEGATIVES, replace=False)
    positives = attention[tumor]
    return auroc(np.concatenate([positives, negatives]), np.r_[np.ones(positives.size), np.zeros(negatives.size)])


def run(dataset: Path, split_name: str, exclude: tuple[str, ...]) -> list[dict]:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    split = load_splits()[split_name]
    segmenter = Segmenter.from_pretrained("demo-ct")
    segmenter.exclude_atlas_patients = exclude
    categories = [c for c in CATEGORIES if "CT" in CATEGORIES[c].modalities]
    cases = select_real_cases(read_dataset(dataset), categories, "CT")
    rng = np.random.default_rng(0)
    rows = []
    for n, case in enumerate(cases):
        images, mask = case.load()
        image = next(iter(images.values()))
        tumor = mask.array > 0 if mask is not None and mask.array.any() else None
        category = find_category(case.prompt).name
        prompts = [(case.prompt, "tumor" if tumor is not None else "tumor-free")]
        if tumor is not None:
            prompts.append((wrong_prompt(category, n), "wrong organ"))
        start = time.perf_counter()
        result = segmenter(image, [p for p, _ in prompts], settings=PRESETS["fast"], modality="CT")
        seconds = time.perf_counter() - start
        for (prompt, kind), finding in zip(prompts, result.findings):
            attention = finding.attention.array
            rows.append({"case": case.case_id, "category": category, "role": split.role(category) or "",
                         "kind": kind, "prompt": prompt,
                         "inside_mean": float(attention[tumor].mean()) if tumor is not None else "",
                         "voxel_auroc": voxel_auroc(attention, tumor, rng) if kind == "tumor" else "",
                         "presence": finding.presence, "found": finding.found, "volume_ml": finding.volume_ml,
                         "seconds": seconds})
        print(f"{n + 1}/{len(cases)} {case.case_id}: " + ", ".join(
            f"{r['kind']} presence {r['presence']:.3f} {r['volume_ml']:.1f} mL" for r in rows[-len(prompts):]),
            flush=True)
    result = segmenter(noise_volume(), categories, settings=PRESETS["fast"], modality="CT")
    for prompt, finding in zip(categories, result.findings):
        rows.append({"case": "noise", "category": prompt, "role": split.role(prompt) or "", "kind": "noise",
                     "prompt": prompt, "inside_mean": "", "voxel_auroc": "", "presence": finding.presence,
                     "found": finding.found, "volume_ml": finding.volume_ml, "seconds": ""})
    return rows


def tables(rows: list[dict]) -> str:
    lines = ["| role | tumors | mean map in tumor, own prompt | same, wrong-organ prompt | ratio | voxel AUROC |",
             "|---|---|---|---|---|---|"]
    for role in ("seen", "unseen"):
        own = [r for r in rows if r["role"] == role and r["kind"] == "tumor"]
        if not own:
            continue
        wrong = {r["case"]: r for r in rows if r["kind"] == "wrong organ"}
        a = float(np.mean([r["inside_mean"] for r in own]))
        b = float(np.mean([wrong[r["case"]]["inside_mean"] for r in own if r["case"] in wrong]))
        ratio = a / b if b > 0 else float("inf")
        lines.append(f"| {role} | {len(own)} | {a:.3f} | {b:.3f} | {ratio:.1f}x | "
                     f"{np.nanmean([r['voxel_auroc'] for r in own]):.3f} |")
    lines += ["", "| requests | n | reported found | mean presence | false-positive mL, mean | max |",
              "|---|---|---|---|---|---|"]
    for kind in ("tumor", "wrong organ", "tumor-free", "noise"):
        chosen = [r for r in rows if r["kind"] == kind]
        if chosen:
            volumes = [r["volume_ml"] for r in chosen]
            fp = "" if kind == "tumor" else f"{np.mean(volumes):.1f} | {np.max(volumes):.1f}"
            lines.append(f"| {kind} | {len(chosen)} | {sum(r['found'] for r in chosen)} | "
                         f"{np.mean([r['presence'] for r in chosen]):.3f} | {fp or '- | -'} |")
    positives = [r for r in rows if r["kind"] in ("tumor", "tumor-free")]
    presence = auroc([r["presence"] for r in positives], [r["kind"] == "tumor" for r in positives])
    lines += ["", f"Presence AUROC (tumors vs tumor-free scans, own prompts): {presence:.3f}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--split", default="organs-a")
    parser.add_argument("--exclude-atlas-patient", action="append", default=[])
    args = parser.parse_args()
    rows = run(args.dataset, args.split, tuple(args.exclude_atlas_patient))
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "steering.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    text = tables(rows)
    (args.out / "steering.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
