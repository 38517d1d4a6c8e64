"""Zero-shot attention benchmark: seen vs unseen tumor categories of a split, on held-out phantoms.

Run: python benchmarks/bench_attention.py [--heads FILE] [--split organs-a] [--cases 4] [--size 64]

For every CT category of the split, on phantoms whose seeds training never uses: voxel AUROC of the
attention map and Dice of the map at the heads' chosen threshold, with the category's own prompt; and,
as the in-run control, the mean map value inside the tumor with the category's prompt against the
prompt of a category in another organ (if the map follows the text, the wrong prompt is lower). Timing: the per-volume cost (encode + frozen features)
against the per-prompt cost (heads + map back on the input grid), as a ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from diffugts.attention.checkpoint import bundled_heads_path, load_heads
from diffugts.attention.encode import encode_for_attention
from diffugts.attention.infer import attention_map
from diffugts.backbone import build_backbone
from diffugts.data.categories import CATEGORIES
from diffugts.data.phantom import make_phantom
from diffugts.data.splits import load_splits
from diffugts.evaluation import auroc, segmentation_scores
from diffugts.paths import cache_dir
from diffugts.text import CachedTextEncoder, build_text_encoder, parse_prompt

HELD_OUT_SEED = 7_000_000  # training seeds are below 1e6 (see attention.train.prepare_cases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heads", default=str(bundled_heads_path()))
    parser.add_argument("--split", default="organs-a")
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    heads, report = load_heads(args.heads)
    threshold = float(report.get("threshold", 0.5))
    backbone = build_backbone(heads.config.backbone)
    text = CachedTextEncoder(build_text_encoder(heads.config.text_encoder), cache_dir() / "text")
    split = load_splits()[args.split]
    rows, volume_seconds, prompt_seconds = [], [], []
    for role, categories in (("seen", split.seen), ("unseen", split.unseen)):
        for category in categories:
            if "CT" not in CATEGORIES[category].modalities:
                continue
            wrong = next(c for c in CATEGORIES if CATEGORIES[c].organ != CATEGORIES[category].organ
                         and "CT" in CATEGORIES[c].modalities)
            scores = []
            for n in range(args.cases):
                phantom = make_phantom(category, "CT", args.size, seed=HELD_OUT_SEED + 100 * n + len(rows))
                start = time.perf_counter()
                encoded = encode_for_attention(backbone, phantom.image, timestep=heads.config.timestep, modality="CT")
                volume_seconds.append(time.perf_counter() - start)
                start = time.perf_counter()
                right = attention_map(heads, text, encoded, parse_prompt(category, "CT"))
                prompt_seconds.append(time.perf_counter() - start)
                wrong_map = attention_map(heads, text, encoded, parse_prompt(wrong, "CT"))
                truth = phantom.mask.array > 0
                dice = segmentation_scores(right.like((right.array > threshold).astype(np.uint8)), phantom.mask).dice
                scores.append((auroc(right.array, truth), dice, float(right.array[truth].mean()),
                               float(wrong_map.array[truth].mean())))
            mean = np.nanmean(np.array(scores), axis=0)
            rows.append((category, role, wrong, *mean))
    print(f"Heads {args.heads} (backbone {heads.config.backbone}, text {heads.config.text_encoder}), split "
          f"{args.split}, {args.cases} held-out CT phantoms of {args.size}^3 per category.\n")
    print(f"| category | role | voxel AUROC | Dice @{threshold:g} | map in tumor, own prompt | map in tumor, wrong "
          "prompt | wrong prompt |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    for category, role, wrong, area, dice, inside, wrong_inside in rows:
        print(f"| {category} | {role} | {area:.3f} | {dice:.3f} | {inside:.3f} | {wrong_inside:.3f} | {wrong} |")
    for role in ("seen", "unseen"):
        chosen = np.array([r[3:] for r in rows if r[1] == role])
        if len(chosen):
            area, dice, inside, wrong_inside = chosen.mean(axis=0)
            print(f"| **mean {role}** | | {area:.3f} | {dice:.3f} | {inside:.3f} | {wrong_inside:.3f} | |")
    print(f"\nPer volume (encode + frozen features): {np.median(volume_seconds):.2f} s; per prompt (heads + map on "
          f"the input grid): {np.median(prompt_seconds):.2f} s; a new prompt costs "
          f"{np.median(prompt_seconds) / np.median(volume_seconds):.2f}x the volume's first pass.")


if __name__ == "__main__":
    main()
