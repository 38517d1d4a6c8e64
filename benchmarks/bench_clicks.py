"""Text plus clicks (issue 18): Dice after 0, 1, 3 and 5 simulated clicks, and seconds per click.

Run: OMP_NUM_THREADS=1 python benchmarks/bench_clicks.py --valset /work/valset2 --real ../shared/data/real --out DIR
Each click goes where interactive benchmarks put it: the deepest voxel (farthest from its border, in mm) of the
largest connected error region of the current mask, positive when that region is missed tumor, negative when it
is a false positive. Three methods per case, shipped demo-ct models, Fast preset:
- text: the prompt alone (the same at every click count);
- text + clicks: the prompt with the clicks so far (each click one more Segmenter call on the cached volume);
- clicks alone: the same click modulation (segment/clicks.py) on an empty probability (no text, no refinement).
Seconds: the first prompt on the volume (cold: encoding included) and each click after it, in the same process.
Writes DIR/clicks.csv (one row per case, method and click count) and DIR/clicks.md (the tables for the README).
"""

from __future__ import annotations

import argparse
import csv
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from diffugts.backbone.grid import from_model_grid
from diffugts.data.readers import read_dataset
from diffugts.io import read_volume
from diffugts.segment import PRESETS, Point, Segmenter
from diffugts.segment.cache import Keyed
from diffugts.segment.clicks import TOUCH_MM, modulate, near, touched_components
from diffugts.segment.points import Guidance
from diffugts.segment.postprocess import binary_mask

COUNTS = (0, 1, 3, 5)
METHODS = ("text", "text + clicks", "clicks alone")


def dice(mask: np.ndarray, truth: np.ndarray) -> float:
    return 2 * float((mask & truth).sum()) / max(1, int(mask.sum() + truth.sum()))


def next_click(mask: np.ndarray, truth: np.ndarray, volume) -> Point | None:
    """The click at the deepest voxel of the largest error region (None when there is no error)."""
    best, positive = None, True
    for errors, is_missed in ((truth & ~mask, True), (mask & ~truth, False)):
        labels, count = ndimage.label(errors)
        if count:
            sizes = np.bincount(labels.ravel())[1:]
            if best is None or sizes.max() > best.sum():
                best, positive = labels == np.argmax(sizes) + 1, is_missed
    if best is None:
        return None
    depth = ndimage.distance_transform_edt(best, sampling=volume.spacing[::-1])
    k, j, i = np.unravel_index(int(np.argmax(depth)), best.shape)
    return Point(tuple(float(v) for v in (volume.grid.ijk_to_ras @ np.array([i, j, k, 1.0]))[:3]), positive)


def clicks_alone(segmenter: Segmenter, image, modality: str, points: list[Point]) -> np.ndarray:
    """The mask the clicks make on their own: their modulation of an empty probability, thresholded at 0.5."""
    state = segmenter.stages.run("encode", partial(segmenter.encode), volume=Keyed.by_content(image, "volume"),
                                 modality=modality).value  # the volume's cached encoding
    zero = torch.zeros_like(state.encoded.image)
    guidance = Guidance(tuple(points))
    probability, _, before = modulate(state, (zero, zero), guidance)
    restored = from_model_grid(probability, state.encoded.grid, intensities=False)
    keep = near(image, guidance.positive, TOUCH_MM)
    remove = None
    if before is not None:
        earlier, _ = binary_mask(from_model_grid(before, state.encoded.grid, intensities=False), 0.5)
        remove = touched_components(earlier.array > 0, near(image, guidance.negative, TOUCH_MM), keep)
    mask, _ = binary_mask(restored, 0.5, keep=keep, remove=remove, keep_only=bool(guidance.positive))
    return mask.array > 0


def run_case(segmenter: Segmenter, case, clicks: int) -> tuple[list[dict], dict]:
    image = read_volume(case.image.path)
    truth = np.isin(read_volume(case.mask).array, case.tumor_labels)
    modality = case.modality
    settings = PRESETS["fast"]
    start = time.perf_counter()
    text = segmenter(image, case.prompt, settings=settings, modality=modality).findings[0].mask.array > 0
    first = time.perf_counter() - start
    rows = [{"case": case.case_id, "prompt": case.prompt, "method": "text", "clicks": n,
             "dice": round(dice(text, truth), 4)} for n in COUNTS]
    seconds = []
    for method in ("text + clicks", "clicks alone"):
        mask = text if method == "text + clicks" else np.zeros_like(truth)
        points: list[Point] = []
        rows.append({"case": case.case_id, "prompt": case.prompt, "method": method, "clicks": 0,
                     "dice": round(dice(mask, truth), 4)})
        for n in range(1, clicks + 1):
            point = next_click(mask, truth, image)
            if point is not None:
                points.append(point)
                if method == "text + clicks":
                    start = time.perf_counter()
                    mask = segmenter(image, case.prompt, settings=settings, modality=modality,
                                     points=points).findings[0].mask.array > 0
                    seconds.append(time.perf_counter() - start)
                else:
                    mask = clicks_alone(segmenter, image, modality, points)
            if n in COUNTS:
                rows.append({"case": case.case_id, "prompt": case.prompt, "method": method, "clicks": n,
                             "dice": round(dice(mask, truth), 4)})
    timing = {"case": case.case_id, "size": "x".join(map(str, image.size)), "first_prompt_s": round(first, 2),
              "click_s": round(float(np.mean(seconds)), 2) if seconds else float("nan")}
    timing["ratio"] = round(timing["click_s"] / first, 3) if seconds else float("nan")
    return rows, timing


def select(dataset: Path, count: int) -> list:
    """CT cases with a tumor, the first ``count`` of a dataset (one per prompt where it can)."""
    cases = [c for c in read_dataset(dataset) if c.modality == "CT" and c.mask is not None]
    cases = [c for c in cases if np.isin(read_volume(c.mask).array, c.tumor_labels).any()]
    chosen, prompts = [], set()
    for case in cases:
        if case.prompt not in prompts:
            chosen.append(case)
            prompts.add(case.prompt)
    return (chosen + [c for c in cases if c not in chosen])[:count]


def table(rows: list[dict], group: str) -> list[str]:
    lines = [f"| {group} | " + " | ".join(f"{n} click{'s' if n != 1 else ''}" for n in COUNTS) + " |",
             "|---|" + "---:|" * len(COUNTS)]
    for method in METHODS:
        means = [np.mean([r["dice"] for r in rows if r["method"] == method and r["clicks"] == n]) for n in COUNTS]
        lines.append(f"| {method} | " + " | ".join(f"{m:.3f}" for m in means) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--valset", type=Path, required=True, help="a 'diffugts data synth' set (manifest.csv)")
    parser.add_argument("--real", type=Path, help="the real cases (manifest.csv); its CT cases with a tumor")
    parser.add_argument("--cases", type=int, default=6, help="synthetic cases (default 6)")
    parser.add_argument("--clicks", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    segmenter = Segmenter.from_pretrained("demo-ct")
    groups = {"synthetic in real (valset)": select(args.valset, args.cases)}
    if args.real:
        groups["real tumor cases (CT)"] = select(args.real, 100)
    args.out.mkdir(parents=True, exist_ok=True)
    rows, timings, lines = [], [], []
    for group, cases in groups.items():
        made = []
        for case in cases:
            case_rows, timing = run_case(segmenter, case, args.clicks)
            print(case.case_id, [(r["method"], r["clicks"], r["dice"]) for r in case_rows], timing, flush=True)
            made += [{**r, "group": group} for r in case_rows]
            timings.append(timing)
        rows += made
        lines += [f"{group}: {len(cases)} cases ({', '.join(c.case_id for c in cases)}), mean Dice", "",
                  *table(made, "method"), ""]
    lines += ["| case | size | first prompt (s) | per click (s) | click / first |", "|---|---|---:|---:|---:|"]
    lines += [f"| {t['case']} | {t['size']} | {t['first_prompt_s']} | {t['click_s']} | {t['ratio']} |"
              for t in timings]
    with open(args.out / "clicks.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["group", "case", "prompt", "method", "clicks", "dice"])
        writer.writeheader()
        writer.writerows(rows)
    (args.out / "clicks.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
