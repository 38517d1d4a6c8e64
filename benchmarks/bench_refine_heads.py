"""Refinement heads on held-out anatomy, against the organ z-score baseline, on the heads' own inputs.

Run: OMP_NUM_THREADS=1 python benchmarks/bench_refine_heads.py DATA STORE --head FILE [--head FILE ...]
     [--exclude-atlas-patient ts_p1]
DATA: a synthetic-in-real dataset of patients no head trained on ('diffugts data synth --split validation').
STORE: a folder for its prepared examples (made once, exactly as 'diffugts train refine' makes training
examples: the frozen backbone, the bundled attention heads, the organ prior of each prompt's words; read back
when present). Per head and threshold (0.3, 0.5, 0.7): Dice on the model grid inside the search region, mean
over the tumors and per category, and the voxels marked on the negatives (tumor-free scans, wrong-organ
prompts). The baseline: the organ z-score channel above 3.5 after a 3-voxel median filter inside the organ,
its two largest components (evaluation/baselines.py's rule, on the model grid).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from diffugts.attention.train import select_real_cases, seen_categories
from diffugts.data.readers import read_dataset
from diffugts.evaluation.baselines import OUTLIER_K
from diffugts.segment import Segmenter
from diffugts.segment.checkpoint import load_refine
from diffugts.segment.organ_context import MARGIN_MM, Z_CLIP
from diffugts.segment.refine import INPUT_CHANNELS, RefineConfig, RefineHead
from diffugts.segment.train import Example, load_examples, prepare_examples
from diffugts.segment.training_config import RefineTrainingConfig

THRESHOLDS = (0.3, 0.5, 0.7)
PRIOR, ZSCORE = INPUT_CHANNELS.index("organ prior"), INPUT_CHANNELS.index("organ z-score")


def stored_examples(data: str, store: Path, exclude: list[str]) -> list[tuple[str, Example]]:
    """(category, example) for every example of ``data``, prepared into ``store`` once."""
    config = RefineTrainingConfig(data=data, exclude_atlas_patients=exclude)
    segmenter = Segmenter.from_pretrained("demo-ct", refine=RefineHead(RefineConfig()))
    prepare_examples(segmenter, config, store)
    cases = select_real_cases(read_dataset(data), seen_categories(config, segmenter.backbone, phantoms=False), "CT")
    return [(case.category, example) for n, case in enumerate(cases)
            for example in load_examples(store / f"scan_{n:05d}.safetensors")]


def organ(example: Example) -> np.ndarray:
    prior = example.inputs[0, PRIOR].float().numpy()
    return prior >= min(0.5, 0.5 * prior.max()) if prior.max() >= 0.1 else np.zeros(prior.shape, bool)


def baseline(example: Example) -> np.ndarray:
    inside = organ(example)
    z = ndimage.median_filter(example.inputs[0, ZSCORE].float().numpy() * Z_CLIP, size=3)
    outliers = inside & (np.abs(z) > OUTLIER_K)
    labels, count = ndimage.label(outliers & ndimage.binary_erosion(inside), structure=np.ones((3, 3, 3)))
    if count == 0:
        return np.zeros(inside.shape, bool)
    sizes = ndimage.sum_labels(labels > 0, labels, range(1, count + 1))
    kept = np.isin(labels, np.argsort(sizes)[::-1][:2] + 1)
    return ndimage.binary_dilation(kept, mask=outliers) | kept


def head_probability(head: RefineHead, example: Example) -> np.ndarray:
    """The head's probability inside the organ grown by the search margin (about 3 model-grid voxels)."""
    inputs = example.inputs.float()[:, [INPUT_CHANNELS.index(name) for name in head.config.inputs]]
    pads = [(0, -n % head.size_multiple) for n in inputs.shape[2:]]
    padded = F.pad(inputs, [v for p in reversed(pads) for v in p], mode="replicate")
    with torch.no_grad():
        probability = torch.sigmoid(head(padded))[0, 0, : inputs.shape[2], : inputs.shape[3], : inputs.shape[4]]
    reach = 2 * round(MARGIN_MM / 2) + 1
    region = F.max_pool3d(torch.from_numpy(organ(example)).float()[None, None], reach, 1, reach // 2)[0, 0] > 0
    return (probability * region).numpy()


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
    examples = stored_examples(args.data, args.store, args.exclude_atlas_patient)
    print("| method | Dice | per category | FP voxels on negatives |\n|---|---|---|---|")
    score("organ z-score baseline", baseline, examples)
    for path in args.head:
        head, _ = load_refine(path)
        head.eval()
        probabilities = {id(e): head_probability(head, e) for _, e in examples}
        for threshold in THRESHOLDS:
            score(f"{Path(path).name} > {threshold}", lambda e, t=threshold: probabilities[id(e)] > t, examples)


if __name__ == "__main__":
    main()
