"""Train the attention heads on the seen categories of a zero-shot split (phantoms, and real cases), resumably.

Each step draws one case, one wording of its category (name or synonym) and, with probability ``negative_fraction``, a prompt for another seen
category in another organ whose target is empty: the heads must read the text, not just find
anything abnormal. A real case without a tumor always gets a seen category's prompt and an empty target. Loss: class-balanced binary cross-entropy plus soft Dice on the model grid. Step ``n`` draws from
``default_rng([seed, n])``, so a resumed run continues exactly as an uninterrupted one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.categories import CATEGORIES, PHANTOM_CATEGORIES
from ..data.phantom import make_phantom
from ..data.splits import load_splits
from ..errors import DiffuGTSError
from ..progress import ProgressCallback, silent
from ..text import parse_prompt
from ..training import ResumableRun, best_dice_threshold, class_balanced_loss
from .config import AttentionTrainingConfig
from .checkpoint import load_heads, save_heads
from .encode import EncodedVolume, encode_for_attention
from .heads import AttentionHeads, HeadsConfig
from .infer import attention_logits, prompt_embeddings

FINAL_NAME = "attention_heads.safetensors"
MAX_POSITIVE_WEIGHT = 20.0


@dataclass
class TrainingCase:
    encoded: EncodedVolume
    category: str | None  # None: a case without a tumor, a negative for every prompt
    organ: str
    name: str = ""


def seen_categories(config, backbone, *, phantoms: bool = True) -> list[str]:
    """The split's seen categories imaged in the configured modality (the backbone's), and only those phantoms
    show when ``phantoms`` are what training is made of."""
    splits = load_splits()
    if config.split not in splits:
        raise DiffuGTSError(f"unknown zero-shot split {config.split!r}", hint=f"Choose from: {', '.join(splits)}.")
    wanted = config.categories or list(splits[config.split].seen)
    usable = [c for c in wanted if config.modality in CATEGORIES[c].modalities
              and (c in PHANTOM_CATEGORIES or not phantoms)]
    if not usable:
        raise DiffuGTSError(f"no category of split {config.split!r} is imaged as {config.modality}",
                            hint=f"Backbone {backbone.config.name} models {', '.join(backbone.config.modalities)}.")
    return usable


def prepare_cases(backbone, categories: list[str], config: AttentionTrainingConfig,
                  progress: ProgressCallback = silent) -> list[TrainingCase]:
    """Phantoms of each category phantoms can show, encoded once (the backbone is frozen, so features never
    change); the others are trained on real cases only."""
    total = sum(c in PHANTOM_CATEGORIES for c in categories) * config.cases_per_category
    cases = []
    for c, category in enumerate(categories):
        for n in range(config.cases_per_category if category in PHANTOM_CATEGORIES else 0):
            phantom = make_phantom(category, config.modality, config.size, seed=config.seed * 100_003 + c * 1009 + n)
            encoded = encode_for_attention(backbone, phantom.image, timestep=config.timestep,
                                           modality=config.modality, mask=phantom.mask)
            cases.append(TrainingCase(encoded, category, phantom.organ))
            progress("prepare phantoms", len(cases) / total)
    return cases


def select_real_cases(cases: list, categories: list[str], modality: str) -> list:
    """The cases training may use: in ``modality``'s family (CT; MR of any sequence: each case is encoded as its
    own), and either a tumor of a seen category (never an unseen one: that would break the zero-shot split) or no
    tumor at all (no mask: a negative)."""
    from ..io.sequence import family

    return [case for case in cases if family(case.modality) == family(modality)
            and (case.mask is None or case.category in categories)]


def prepare_real_cases(backbone, categories: list[str], config: AttentionTrainingConfig,
                       progress: ProgressCallback = silent) -> list[TrainingCase]:
    """The usable cases of ``config.real_data``, encoded once; none when it is not set."""
    if not config.real_data:
        return []
    from ..data.readers import read_dataset

    chosen = select_real_cases(read_dataset(config.real_data), categories, config.modality)
    if not chosen:
        raise DiffuGTSError(f"no case of {config.real_data} can be used: none is {config.modality} with a tumor of a "
                            f"seen category ({', '.join(categories)}) or without a tumor", path=config.real_data)
    prepared = []
    for case in chosen:
        images, mask = case.load()
        encoded = encode_for_attention(backbone, next(iter(images.values())), timestep=config.timestep,
                                       modality=case.modality, mask=mask)
        prepared.append(TrainingCase(encoded, case.category if mask is not None else None, case.organ, case.case_id))
        progress("prepare real cases", len(prepared) / len(chosen))
    return prepared


def case_loss(heads: AttentionHeads, case: TrainingCase, abnormal: torch.Tensor, normal: torch.Tensor,
              positive: bool) -> torch.Tensor:
    logits = case.encoded.grid.crop(attention_logits(heads, case.encoded, abnormal, normal))
    target = case.encoded.grid.crop(case.encoded.mask) if positive else torch.zeros_like(logits)
    # tumors are ~1% of the voxels: weighed up (capped) so that 0.5 stays a useful threshold
    return class_balanced_loss(logits, target, MAX_POSITIVE_WEIGHT)


def train_attention(backbone, text_encoder, config: AttentionTrainingConfig, out_dir: str | Path,
                    progress: ProgressCallback = silent) -> tuple[AttentionHeads, dict]:
    """Train (or resume) heads; writes ``attention_heads.safetensors`` and its JSON report to ``out_dir``."""
    out_dir = Path(out_dir)
    categories = seen_categories(config, backbone, phantoms=not config.real_data)  # real cases show any category
    run = ResumableRun(out_dir, asdict(config), save_heads, load_heads)  # refuses another run's folder now
    cases = prepare_cases(backbone, categories, config, progress) + prepare_real_cases(backbone, categories, config,
                                                                                        progress)
    # every name of a category (its synonyms too) is a prompt the heads must answer the same way
    embeddings = {c: [prompt_embeddings(text_encoder, parse_prompt(name, config.modality))
                      for name in CATEGORIES[c].names()] for c in categories}

    torch.manual_seed(config.seed)
    heads = AttentionHeads(HeadsConfig(tuple(f.shape[1] for f in cases[0].encoded.features), text_encoder.dim,
                                       config.embed_dim, config.text_encoder, config.backbone, config.timestep))
    optimizer = torch.optim.AdamW(heads.parameters(), lr=config.learning_rate, weight_decay=1e-4)
    start, losses = run.restore(heads, optimizer)
    for step in range(start, config.steps):
        rng = np.random.default_rng([config.seed, step])
        case = cases[int(rng.integers(len(cases)))]
        if case.category is None:  # no tumor: any seen category's prompt, an empty target
            positive, prompt_category = False, categories[int(rng.integers(len(categories)))]
        else:
            others = [c for c in categories if CATEGORIES[c].organ != case.organ]
            positive = not others or rng.random() >= config.negative_fraction
            prompt_category = case.category if positive else others[int(rng.integers(len(others)))]
        wordings = embeddings[prompt_category]
        abnormal, normal = wordings[int(rng.integers(len(wordings)))]
        loss = case_loss(heads, case, abnormal, normal, positive)
        run.learn(heads, optimizer, loss, step, losses, steps=config.steps, every=config.checkpoint_every)
        progress("train attention", (step + 1) / config.steps)
    threshold, train_dice = choose_threshold(heads.eval(), cases, embeddings)
    report = {"config": asdict(config), "categories": categories, "steps": config.steps,
              "real_cases": [{"case": c.name, "category": c.category} for c in cases if c.name],
              "final_loss": float(np.mean(losses[-20:])) if losses else None,
              "threshold": threshold, "training_dice_at_threshold": train_dice}
    save_heads(heads, out_dir / FINAL_NAME, extra=report)
    return heads.eval(), report


def choose_threshold(heads: AttentionHeads, cases: list[TrainingCase], embeddings: dict) -> tuple[float, float]:
    """The probability threshold with the best mean Dice over the training cases (their own prompts)."""
    def pairs():
        for case in (c for c in cases if c.category is not None):
            abnormal, normal = embeddings[case.category][0]
            logits = case.encoded.grid.crop(attention_logits(heads, case.encoded, abnormal, normal))
            yield torch.sigmoid(logits), case.encoded.grid.crop(case.encoded.mask) > 0.5

    with torch.no_grad():
        return best_dice_threshold(pairs())
