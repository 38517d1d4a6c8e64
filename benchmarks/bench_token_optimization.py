"""Test-time optimization of the prompt's embedding, measured: does it help the zero-shot attention maps?

Run: python benchmarks/bench_token_optimization.py [--cases 4] [--size 64] [--steps 20]

Per volume, a learnable offset is added to the prompt's contrast vector (abnormal minus normal text
embedding, in the heads' joint space; the text encoder, heads and backbone stay frozen) and tuned for
``--steps`` Adam steps against a label-free objective, with an L2 pull back to the prompt:
- entropy: mean binary entropy of the map (TPT-style confidence maximization);
- self-training: the map's own top 2% of voxels pushed away from the rest.
Measured on the held-out phantoms of bench_attention.py (same seeds), on the model grid: voxel AUROC
and Dice at the heads' threshold, and the seconds per prompt, against the plain map in the same run.
This is the experiment behind not shipping the option (benchmarks/README.md, "Zero-shot attention").
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from diffugts.attention.checkpoint import bundled_heads_path, load_heads
from diffugts.attention.encode import EncodedVolume, encode_for_attention
from diffugts.attention.heads import AttentionHeads
from diffugts.attention.infer import prompt_embeddings
from diffugts.backbone import build_backbone
from diffugts.data.categories import CATEGORIES
from diffugts.data.phantom import make_phantom
from diffugts.data.splits import load_splits
from diffugts.evaluation import auroc
from diffugts.paths import cache_dir
from diffugts.text import CachedTextEncoder, build_text_encoder, parse_prompt

HELD_OUT_SEED = 7_000_000  # as bench_attention.py: seeds training never uses
TOP_FRACTION = 0.02


def objective(probability: torch.Tensor, name: str) -> torch.Tensor:
    if name == "entropy":
        p = probability.clamp(1e-6, 1 - 1e-6)
        return -(p * p.log() + (1 - p) * (1 - p).log()).mean()
    flat = probability.flatten()
    top = torch.zeros_like(flat, dtype=torch.bool)
    top[torch.topk(flat.detach(), max(1, int(TOP_FRACTION * flat.numel()))).indices] = True
    return flat[~top].mean() - flat[top].mean()


def optimized_map(heads: AttentionHeads, encoded: EncodedVolume, abnormal: torch.Tensor, normal: torch.Tensor,
                  name: str | None, steps: int, pull: float, learning_rate: float = 0.05) -> np.ndarray:
    """The map on the (cropped) model grid after ``steps`` of optimizing the contrast offset (none: the plain map)."""
    with torch.no_grad():
        visual = heads.visual_embedding(encoded.features)
        contrast = heads.text_embedding(abnormal) - heads.text_embedding(normal)
    offset = torch.zeros_like(contrast, requires_grad=True)
    optimizer = torch.optim.Adam([offset], lr=learning_rate)

    def probability() -> torch.Tensor:
        logits = torch.einsum("bexyz,e->bxyz", visual, contrast + offset)[:, None] * heads.log_scale.exp() + heads.bias
        logits = F.interpolate(logits, size=encoded.image.shape[2:], mode="trilinear", align_corners=False)
        return torch.sigmoid(encoded.grid.crop(logits))

    for _ in range(steps if name else 0):
        loss = objective(probability(), name) + pull * offset.square().sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return probability()[0, 0].numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="organs-a")
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    heads, report = load_heads(bundled_heads_path())
    threshold = float(report.get("threshold", 0.5))
    backbone = build_backbone(heads.config.backbone)
    text = CachedTextEncoder(build_text_encoder(heads.config.text_encoder), cache_dir() / "text")
    settings = [("plain map", None, 0.0), ("entropy, pull 0.1", "entropy", 0.1),
                ("self-training, pull 0.1", "self-training", 0.1), ("self-training, pull 1", "self-training", 1.0)]
    scores = {(label, role): [] for label, *_ in settings for role in ("seen", "unseen")}
    seconds = {label: [] for label, *_ in settings}
    split, row = load_splits()[args.split], 0
    for role, categories in (("seen", split.seen), ("unseen", split.unseen)):
        for category in (c for c in categories if "CT" in CATEGORIES[c].modalities):
            for n in range(args.cases):
                phantom = make_phantom(category, "CT", args.size, seed=HELD_OUT_SEED + 100 * n + row)
                encoded = encode_for_attention(backbone, phantom.image, timestep=heads.config.timestep,
                                               modality="CT", mask=phantom.mask)
                truth = encoded.grid.crop(encoded.mask)[0, 0].numpy() > 0.5
                abnormal, normal = prompt_embeddings(text, parse_prompt(category, "CT"))
                for label, name, pull in settings:
                    start = time.perf_counter()
                    probability = optimized_map(heads, encoded, abnormal, normal, name, args.steps, pull)
                    seconds[label].append(time.perf_counter() - start)
                    found = probability > threshold
                    dice = 2 * (found & truth).sum() / max(1, found.sum() + truth.sum())
                    scores[label, role].append((auroc(probability, truth), dice))
            row += 1
    print(f"Bundled heads, split {args.split}, {args.cases} held-out {args.size}^3 CT phantoms per category, "
          f"{args.steps} steps.\n")
    print(f"| setting | seen AUROC | seen Dice @{threshold:g} | unseen AUROC | unseen Dice | s per prompt | x plain |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    plain = np.median(seconds["plain map"])
    for label, *_ in settings:
        seen, unseen = (np.nanmean(np.array(scores[label, role]), axis=0) for role in ("seen", "unseen"))
        cost = np.median(seconds[label])
        print(f"| {label} | {seen[0]:.3f} | {seen[1]:.3f} | {unseen[0]:.3f} | {unseen[1]:.3f} | {cost:.3f} | "
              f"{cost / plain:.0f}x |")


if __name__ == "__main__":
    main()
