"""Refinement heads on held-out anatomy, against the organ z-score baseline, on the heads' own inputs.

Run: OMP_NUM_THREADS=1 python benchmarks/bench_refine_heads.py DATA STORE --head FILE [--head FILE ...]
     [--exclude-atlas-patient ts_p1]
DATA: a synthetic-in-real dataset of patients no head trained on ('diffugts data synth --split validation').
STORE: a folder for its prepared examples (made once, exactly as 'diffugts train refine' makes training
examples: the frozen backbone, the bundled attention heads, the organ prior of each prompt's words; read back
when present). Per head and threshold (0.3, 0.5, 0.7): Dice on the model grid inside the search region, mean
over the tumors and per category, and the voxels marked on the negatives (tumor-free scans, wrong-organ
prompts). The baseline: evaluation/baselines.py's intensity outliers of the image channel inside the organ (prior
at least half its peak), on the model grid; each head's probability as its trainer computes it (segment/train.example_probability).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from diffugts.attention.train import select_real_cases, seen_categories
from diffugts.data.readers import read_dataset
from diffugts.evaluation.baselines import intensity_outliers
from diffugts.io import Volume
from diffugts.segment import Segmenter
from diffugts.segment.checkpoint import load_refine
from diffugts.segment.organ_context import MARGIN_MM
from diffugts.segment.refine import INPUT_CHANNELS, RefineConfig, RefineHead
from diffugts.segment.train import Example, example_probability, load_examples, prepare_examples
from diffugts.segment.training_config import RefineTrainingConfig

THRESHOLDS = (0.3, 0.5, 0.7)
IMAGE, PRIOR = INPUT_CHANNELS.index("image"), INPUT_CHANNELS.index("organ prior")


@dataclass(frozen=True)
class Grid:
    """What the examples' model grid needs from the backbone: its spacing and the refinement window."""

    spacing_mm: tuple[float, float, float]
    patch_size: tuple[int, int, int]


def stored_examples(data: str, store: Path, exclude: list[str]) -> tuple[list[tuple[str, Example]], Grid]:
    """(category, example) for every example of ``data``, prepared into ``store`` once, and the model grid."""
    config = RefineTrainingConfig(data=data, exclude_atlas_patients=exclude)
    segmenter = Segmenter.from_pretrained("demo-ct", refine=RefineHead(RefineConfig()))
    prepare_examples(segmenter, config, store)
    cases = select_real_cases(read_dataset(data), seen_categories(config, segmenter.backbone, phantoms=False), "CT")
    examples = [(case.category, example) for n, case in enumerate(cases)
                for example in load_examples(store / f"scan_{n:05d}.safetensors")]
    backbone = segmenter.backbone.config
    return examples, Grid(tuple(backbone.spacing_mm), tuple(backbone.patch_size))


def organ(example: Example) -> np.ndarray:
    prior = example.inputs[0, PRIOR].float().numpy()
    return prior >= min(0.5, 0.5 * prior.max()) if prior.max() >= 0.1 else np.zeros(prior.shape, bool)


def on_grid(array: np.ndarray, grid: Grid) -> Volume:
    return Volume(array, grid.spacing_mm, (0.0, 0.0, 0.0), np.eye(3))


def baseline(example: Example, grid: Grid) -> np.ndarray:
    image = on_grid(example.inputs[0, IMAGE].float().numpy(), grid)
    return intensity_outliers(image, on_grid(organ(example).astype(np.uint8), grid)).mask.array > 0


def head_probability(head: RefineHead, example: Example, grid: Grid) -> np.ndarray:
    """The head's probability inside the organ grown by the search margin."""
    reach = [2 * round(MARGIN_MM / s) + 1 for s in grid.spacing_mm]
    region = F.max_pool3d(torch.from_numpy(organ(example)).float()[None, None], reach, 1,
                          [r // 2 for r in reach])[0, 0] > 0
    return (example_probability(head, example)[0, 0] * region).numpy()


def dice(mask: np.ndarray, target: np.ndarray) -> float:
    total = mask.sum() + target.sum()
    return 1.0 if total == 0 else float(2 * (mask & target).sum() / total)


def score(name: str, predict, examples: list[tuple[str, Example]]) -> None:
    scores: dict[str, list[float]] = {}
    false_positive = []
    for category, example in examples:
        target = example.target[0, 0].numpy() > 0.5
        mask = predict(example)
        if target.any():
            scores.setdefault(category, []).append(dice(mask, target))
        else:
            false_positive.append(int(mask.sum()))
    every = [d for values in scores.values() for d in values]
    per = ", ".join(f"{c} {np.mean(v):.3f}" for c, v in sorted(scores.items()))
    print(f"| {name} | {np.mean(every):.3f} ({len(every)} tumors) | {per} | {np.mean(false_positive):.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("store", type=Path)
    parser.add_argument("--head", action="append", default=[], metavar="FILE")
    parser.add_argument("--exclude-atlas-patient", action="append", default=[], metavar="PATIENT")
    args = parser.parse_args()
    torch.set_num_threads(1)
    examples, grid = stored_examples(args.data, args.store, args.exclude_atlas_patient)
    print("| method | Dice | per category | FP voxels on negatives |\n|---|---|---|---|")
    score("intensity-outlier baseline", lambda e: baseline(e, grid), examples)
    for path in args.head:
        head, _ = load_refine(path)
        head.eval()
        probabilities = {id(e): head_probability(head, e, grid) for _, e in examples}
        for threshold in THRESHOLDS:
            score(f"{Path(path).name} > {threshold}", lambda e, t=threshold: probabilities[id(e)] > t, examples)


if __name__ == "__main__":
    main()
