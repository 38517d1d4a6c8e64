"""Train the refinement head on phantoms of a split's seen categories, resumably, with the frozen
backbone and the trained attention heads in the loop (the head learns from the inputs it gets at run time).

Examples: every phantom with its own category's prompt (target: its tumor) and with a prompt for a
seen category of another organ (target: empty), and healthy phantoms with a prompt for their organ
(target: empty). Each example is the refinement input built exactly as the Segmenter builds it, one
per inpainting seed. Step ``n`` draws from ``default_rng([seed, n])``: a resumed run is exact.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..attention.train import seen_categories
from ..data.categories import CATEGORIES
from ..data.phantom import make_phantom
from ..progress import ProgressCallback, silent
from ..text import parse_prompt
from ..training import ResumableRun, best_dice_threshold, class_balanced_loss
from .checkpoint import load_refine, save_refine
from .pipeline import Segmenter
from .refine import RefineConfig, RefineHead, refine_inputs
from .settings import SegmentSettings
from .training_config import RefineTrainingConfig

FINAL_NAME = "refine_head.safetensors"


@dataclass
class Example:
    inputs: torch.Tensor  # [1, C, X, Y, Z] on the padded model grid
    target: torch.Tensor  # [1, 1, X, Y, Z]
    valid: tuple[int, int, int]  # the unpadded size: the loss is computed there


def prepare_examples(segmenter: Segmenter, config: RefineTrainingConfig,
                     progress: ProgressCallback = silent) -> list[Example]:
    categories = seen_categories(config, segmenter.backbone)
    settings = SegmentSettings(seeds=tuple(range(config.seeds)), steps=config.inpaint_steps)
    plan = [(c, n) for c in categories for n in range(config.cases_per_category)]
    plan += [("healthy", n) for n in range(config.healthy_cases)]
    examples: list[Example] = []
    for index, (category, n) in enumerate(plan):
        seed = config.seed * 100_003 + index * 1009 + n
        phantom = make_phantom(category, config.modality, config.size, seed=seed)
        state = segmenter.encode(phantom.image, config.modality, mask=phantom.mask)
        mask = state.encoded.mask
        rng = np.random.default_rng([config.seed, index])
        if category == "healthy":
            organ_categories = [c for c in categories if CATEGORIES[c].organ == phantom.organ] or categories
            prompts = [(str(rng.choice(organ_categories)), torch.zeros_like(mask))]
        else:
            others = [c for c in categories if CATEGORIES[c].organ != CATEGORIES[category].organ]
            prompts = [(phantom.prompt, mask)] + ([(str(rng.choice(others)), torch.zeros_like(mask))] if others else [])
        for text, target in prompts:
            attention = segmenter.attention(state.encoded, parse_prompt(text, config.modality))
            samples = segmenter.pseudo_healthy(("train", seed, text), state, [attention], settings)
            for sample in samples:
                inputs = refine_inputs(state.encoded.image, state.reconstruction, sample.image, attention,
                                       sample.feature_distance)
                examples.append(Example(inputs, target, state.encoded.grid.resized))
        segmenter.samples.clear()
        progress("prepare phantoms", (index + 1) / len(plan))
    return examples


def _patch(example: Example, size: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A ``size``-voxel cube of the example inside its unpadded part, centred on a tumor voxel half the time."""
    valid = np.array(example.valid)
    edge = np.minimum(size, valid)
    edge -= edge % 4  # the head halves the grid twice
    positives = torch.nonzero(example.target[0, 0] > 0.5)
    if len(positives) and rng.random() < 0.5:
        centre = positives[int(rng.integers(len(positives)))].numpy()
        start = np.clip(centre - edge // 2, 0, valid - edge)
    else:
        start = np.array([int(rng.integers(0, v - e + 1)) for v, e in zip(valid, edge)])
    box = (...,) + tuple(slice(int(a), int(a + e)) for a, e in zip(start, edge))
    return example.inputs[box], example.target[box]


def _crop(tensor: torch.Tensor, size: tuple[int, int, int]) -> torch.Tensor:
    return tensor[..., : size[0], : size[1], : size[2]]


def train_refine(segmenter: Segmenter, config: RefineTrainingConfig, out_dir: str | Path,
                 progress: ProgressCallback = silent) -> tuple[RefineHead, dict]:
    """Train (or resume) a refinement head; writes ``refine_head.safetensors`` with its report to ``out_dir``."""
    out_dir = Path(out_dir)
    run = ResumableRun(out_dir, asdict(config), save_refine, load_refine)  # refuses another run's folder now
    examples = prepare_examples(segmenter, config, progress)
    torch.manual_seed(config.seed)
    head = RefineHead(RefineConfig(channels=tuple(config.channels), backbone=config.backbone))
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.learning_rate, weight_decay=1e-4)
    start, losses = run.restore(head, optimizer)
    head.train()
    for step in range(start, config.steps):
        rng = np.random.default_rng([config.seed, step])
        example = examples[int(rng.integers(len(examples)))]
        inputs, target = _patch(example, config.patch, rng)
        flips = [d + 2 for d in range(3) if rng.random() < 0.5]  # mirror augmentation: no side is special
        loss = class_balanced_loss(head(inputs.flip(flips)), target.flip(flips))
        run.learn(head, optimizer, loss, step, losses, steps=config.steps, every=config.checkpoint_every)
        progress("train refine", (step + 1) / config.steps)
    head.eval()
    # the threshold delineates what is there; whether anything is there is the presence score's job, so
    # examples with an empty target (which any high threshold "wins") do not choose it
    with torch.no_grad():
        threshold, dice = best_dice_threshold(
            (torch.sigmoid(_crop(head(e.inputs), e.valid)), _crop(e.target, e.valid) > 0.5)
            for e in examples if e.target.any())
    head.config = replace(head.config, threshold=threshold)
    report = {"config": asdict(config), "categories": seen_categories(config, segmenter.backbone),
              "examples": len(examples), "steps": config.steps,
              "final_loss": float(np.mean(losses[-50:])) if losses else None,
              "threshold": threshold, "training_dice_at_threshold": dice}
    save_refine(head, out_dir / FINAL_NAME, extra=report)
    return head, report
