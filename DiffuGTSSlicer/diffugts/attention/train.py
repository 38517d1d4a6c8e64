"""Train the attention heads on the seen categories of a zero-shot split (phantoms), resumably.

Each step draws one case, one wording of its category (name or synonym) and, with probability ``negative_fraction``, a prompt for another seen
category in another organ whose target is empty: the heads must read the text, not just find
anything abnormal. Loss: class-balanced binary cross-entropy plus soft Dice on the model grid. Step ``n`` draws from
``default_rng([seed, n])``, so a resumed run continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.categories import CATEGORIES
from ..data.phantom import make_phantom
from ..data.splits import load_splits
from ..errors import DiffuGTSError
from ..progress import ProgressCallback, silent
from ..text import parse_prompt
from .config import AttentionTrainingConfig
from .checkpoint import load_heads, save_heads
from .encode import EncodedVolume, encode_for_attention
from .heads import AttentionHeads, HeadsConfig
from .infer import attention_logits, prompt_embeddings

FINAL_NAME, STATE_NAME = "attention_heads.safetensors", "training_state.pt"
MAX_POSITIVE_WEIGHT = 20.0


@dataclass
class TrainingCase:
    encoded: EncodedVolume
    category: str
    organ: str


def seen_categories(config: AttentionTrainingConfig, backbone) -> list[str]:
    """The split's seen categories that the backbone can image in the configured modality."""
    splits = load_splits()
    if config.split not in splits:
        raise DiffuGTSError(f"unknown zero-shot split {config.split!r}", hint=f"Choose from: {', '.join(splits)}.")
    wanted = config.categories or list(splits[config.split].seen)
    usable = [c for c in wanted if config.modality in CATEGORIES[c].modalities]
    if not usable:
        raise DiffuGTSError(f"no category of split {config.split!r} is imaged as {config.modality}",
                            hint=f"Backbone {backbone.config.name} models {', '.join(backbone.config.modalities)}.")
    return usable


def prepare_cases(backbone, categories: list[str], config: AttentionTrainingConfig,
                  progress: ProgressCallback = silent) -> list[TrainingCase]:
    """Phantoms of each category, encoded once (the backbone is frozen, so features never change)."""
    cases, total = [], len(categories) * config.cases_per_category
    for c, category in enumerate(categories):
        for n in range(config.cases_per_category):
            phantom = make_phantom(category, config.modality, config.size, seed=config.seed * 100_003 + c * 1009 + n)
            encoded = encode_for_attention(backbone, phantom.image, timestep=config.timestep,
                                           modality=config.modality, mask=phantom.mask)
            cases.append(TrainingCase(encoded, category, phantom.organ))
            progress("prepare phantoms", len(cases) / total)
    return cases


def case_loss(heads: AttentionHeads, case: TrainingCase, abnormal: torch.Tensor, normal: torch.Tensor,
              positive: bool) -> torch.Tensor:
    logits = case.encoded.grid.crop(attention_logits(heads, case.encoded, abnormal, normal))
    target = case.encoded.grid.crop(case.encoded.mask) if positive else torch.zeros_like(logits)
    if not positive:
        return F.binary_cross_entropy_with_logits(logits, target)
    # tumors are ~1% of the voxels: weigh them up to the background (capped) so 0.5 stays a useful threshold
    positives = target.sum().clamp(min=1)
    weight = ((target.numel() - positives) / positives).clamp(max=MAX_POSITIVE_WEIGHT)
    bce = F.binary_cross_entropy_with_logits(logits, target, pos_weight=weight)
    probability = torch.sigmoid(logits)
    dice = 1 - (2 * (probability * target).sum() + 1) / (probability.sum() + target.sum() + 1)
    return bce + dice


def train_attention(backbone, text_encoder, config: AttentionTrainingConfig, out_dir: str | Path,
                    progress: ProgressCallback = silent) -> tuple[AttentionHeads, dict]:
    """Train (or resume) heads; writes ``attention_heads.safetensors`` and its JSON report to ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    categories = seen_categories(config, backbone)
    state = _saved_state(out_dir, config)  # refuses a folder of another run before any work is done
    cases = prepare_cases(backbone, categories, config, progress)
    # every name of a category (its synonyms too) is a prompt the heads must answer the same way
    embeddings = {c: [prompt_embeddings(text_encoder, parse_prompt(name, config.modality))
                      for name in CATEGORIES[c].names()] for c in categories}

    torch.manual_seed(config.seed)
    heads = AttentionHeads(HeadsConfig(tuple(f.shape[1] for f in cases[0].encoded.features), text_encoder.dim,
                                       config.embed_dim, config.text_encoder, config.backbone, config.timestep))
    optimizer = torch.optim.AdamW(heads.parameters(), lr=config.learning_rate, weight_decay=1e-4)
    start, losses = _restore(state, out_dir, heads, optimizer) if state else (0, [])
    for step in range(start, config.steps):
        rng = np.random.default_rng([config.seed, step])
        case = cases[int(rng.integers(len(cases)))]
        others = [c for c in categories if CATEGORIES[c].organ != case.organ]
        positive = not others or rng.random() >= config.negative_fraction
        prompt_category = case.category if positive else others[int(rng.integers(len(others)))]
        wordings = embeddings[prompt_category]
        abnormal, normal = wordings[int(rng.integers(len(wordings)))]
        loss = case_loss(heads, case, abnormal, normal, positive)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        progress("train attention", (step + 1) / config.steps)
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            _checkpoint(out_dir, heads, optimizer, config, step + 1, losses)
    threshold, train_dice = choose_threshold(heads.eval(), cases, embeddings)
    report = {"config": asdict(config), "categories": categories, "steps": config.steps,
              "final_loss": float(np.mean(losses[-20:])) if losses else None,
              "threshold": threshold, "training_dice_at_threshold": train_dice}
    save_heads(heads, out_dir / FINAL_NAME, extra=report)
    return heads.eval(), report


def choose_threshold(heads: AttentionHeads, cases: list[TrainingCase], embeddings: dict) -> tuple[float, float]:
    """The probability threshold with the best mean Dice over the training cases (their own prompts)."""
    thresholds = np.round(np.arange(0.05, 1.0, 0.05), 2)
    dice = np.zeros(len(thresholds))
    with torch.no_grad():
        for case in cases:
            abnormal, normal = embeddings[case.category][0]
            probability = torch.sigmoid(case.encoded.grid.crop(attention_logits(heads, case.encoded, abnormal, normal)))
            target = case.encoded.grid.crop(case.encoded.mask) > 0.5
            for n, threshold in enumerate(thresholds):
                predicted = probability > threshold
                overlap = (predicted & target).sum().item()
                dice[n] += 2 * overlap / max(1, predicted.sum().item() + target.sum().item())
    best = int(np.argmax(dice))
    return float(thresholds[best]), float(dice[best] / max(1, len(cases)))


def _checkpoint(out_dir: Path, heads: AttentionHeads, optimizer, config: AttentionTrainingConfig, step: int,
                losses: list[float]) -> None:
    from ..io import atomic_output

    save_heads(heads, out_dir / "checkpoint.safetensors", extra={"step": step})
    state = {"step": step, "optimizer": optimizer.state_dict(), "losses": losses,
             "config": json.dumps(asdict(config))}
    with atomic_output(out_dir / STATE_NAME) as temp:
        torch.save(state, temp)


def _saved_state(out_dir: Path, config: AttentionTrainingConfig) -> dict | None:
    """The last checkpoint's state when it belongs to the same configuration; None when there is none."""
    state_path = out_dir / STATE_NAME
    if not (state_path.is_file() and (out_dir / "checkpoint.safetensors").is_file()):
        return None
    state = torch.load(state_path, weights_only=True)
    if json.loads(state["config"]) != asdict(config):
        raise DiffuGTSError("the output folder holds a training run with another configuration", path=out_dir,
                            hint="Use a new --out folder, or the same options as the interrupted run.")
    return state


def _restore(state: dict, out_dir: Path, heads: AttentionHeads, optimizer) -> tuple[int, list[float]]:
    """Continue from the checkpoint: heads, optimizer, step and loss history."""
    saved, _ = load_heads(out_dir / "checkpoint.safetensors")
    heads.load_state_dict(saved.state_dict())
    optimizer.load_state_dict(state["optimizer"])
    return int(state["step"]), list(state["losses"])
