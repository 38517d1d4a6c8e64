"""Train the refinement head on a split's seen categories, resumably, with the frozen backbone and the trained
attention heads in the loop (the head learns from the inputs it gets at run time).

Scans: a dataset folder (``config.data``: synthesized tumors in real scans, ``diffugts data synth``; tumor-free
scans in it are negatives) or, without one, phantoms of the seen categories plus healthy phantoms. Examples:
every tumor with its own category's prompt (target: its tumor) and with a prompt for a seen category of another
organ (target: empty), and tumor-free scans with a seen category's prompt (target: empty). Each example is the
refinement input built exactly as the Segmenter builds it, its organ context included (the organ prior of the
prompt's organ, computed once per scan grid and organ: synthesized cases share their host's grid), one per
inpainting seed. Step ``n`` draws from ``default_rng([seed, n])``: a resumed run is exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..attention.train import seen_categories
from ..data.categories import CATEGORIES
from ..data.phantom import Phantom, make_phantom
from ..errors import DiffuGTSError
from ..io import Volume
from ..organs.prior import OrganPrior, organ_priors, user_prior
from ..progress import ProgressCallback, silent
from ..text import parse_prompt
from ..training import ResumableRun, best_dice_threshold, class_balanced_loss, one_cycle_lr
from .checkpoint import load_refine, save_refine
from .organ_context import OrganContext, context_of, prompt_organ
from .pipeline import Segmenter
from .refine import INPUT_CHANNELS, RefineConfig, RefineHead, refine_inputs
from .settings import SegmentSettings
from .training_config import RefineTrainingConfig

FINAL_NAME = "refine_head.safetensors"
BOX_MARGIN = 4
MIN_BOX = 32
MIN_TUMOR_IN_REGION = 0.5  # a tumor less inside its prompt's search region than this is no example


@dataclass
class Example:
    inputs: torch.Tensor  # [1, C, X, Y, Z] on the padded model grid
    target: torch.Tensor  # [1, 1, X, Y, Z]
    valid: tuple[int, int, int]  # the unpadded size: the loss is computed there


@dataclass
class Scan:
    """A training scan: its image, its tumor (None: tumor-free) and the seen category it shows or is asked for."""

    name: str
    image: Volume
    mask: Volume | None
    category: str
    modality: str  # what it is encoded as: a real case's own ('MR-FLAIR', ...), the configured one for phantoms
    phantom: Phantom | None = None  # a phantom's organs are known: its organ masks stand for the priors


def training_scans(config: RefineTrainingConfig, categories: list[str]) -> list[Callable[[], Scan]]:
    """The scans of ``config.data`` usable for training (seen categories or tumor-free, in the modality), else
    phantoms; each is read or made only when called (a resumed run never loads the scans it has stored)."""
    if config.data:
        from ..attention.train import select_real_cases
        from ..data.readers import read_dataset

        cases = select_real_cases(read_dataset(config.data), categories, config.modality)
        if not cases:
            raise DiffuGTSError(f"no case of {config.data} can be used: none is {config.modality} with a tumor of a "
                                f"seen category ({', '.join(categories)}) or without a tumor", path=config.data)
        return [partial(_case_scan, case, categories) for case in cases]
    plan = [(c, n) for c in categories for n in range(config.cases_per_category)]
    plan += [("healthy", n) for n in range(config.healthy_cases)]
    return [partial(_phantom_scan, config, categories, index, category, n)
            for index, (category, n) in enumerate(plan)]


def _case_scan(case, categories: list[str]) -> Scan:
    images, mask = case.load()
    tumor = mask if mask is not None and mask.array.any() else None
    category = case.category if case.category in categories else categories[0]
    return Scan(case.case_id, next(iter(images.values())), tumor, category, case.modality)


def _phantom_scan(config: RefineTrainingConfig, categories: list[str], index: int, category: str, n: int) -> Scan:
    phantom = make_phantom(category, config.modality, config.size, seed=config.seed * 100_003 + index * 1009 + n)
    healthy = category == "healthy"
    asked = [c for c in categories if CATEGORIES[c].organ == phantom.organ] or categories if healthy else [category]
    return Scan(f"phantom {index}", phantom.image, None if healthy else phantom.mask, asked[n % len(asked)],
                config.modality, phantom)


class ContextCache:
    """Organ contexts of training scans, the prior made once per scan grid and organ (synthesized cases share
    their host's grid, and a tumor barely moves an organ prior): atlas registrations per host and organ, not per
    case."""

    def __init__(self, exclude_patients: tuple[str, ...]) -> None:
        self.exclude_patients = exclude_patients
        self._priors: dict[tuple, OrganPrior] = {}

    def get(self, scan: Scan, organ: str, image: torch.Tensor, grid, modality: str) -> OrganContext:
        g = scan.image.grid
        key = (g.size, g.spacing, g.origin, g.direction, organ) if scan.phantom is None else (scan.name, organ)
        if key not in self._priors:
            self._priors[key] = (organ_priors(scan.image, [organ], modality=modality,
                                              exclude_patients=self.exclude_patients)[0] if scan.phantom is None
                                 else user_prior(scan.image, organ, scan.phantom.organ_mask(organ)))
        return context_of(self._priors[key], image, grid)


def prepare_examples(segmenter: Segmenter, config: RefineTrainingConfig, store: Path | None = None,
                     progress: ProgressCallback = silent) -> list[Example]:
    """Every scan's examples; with ``store`` (a folder), each scan's are saved there once and read back by a
    resumed run (preparing is the slow part: one encoding and inpainting per scan and prompt)."""
    categories = seen_categories(config, segmenter.backbone, phantoms=not config.data)
    settings = SegmentSettings(seeds=tuple(range(config.seeds)), steps=config.inpaint_steps)
    contexts = ContextCache(tuple(config.exclude_atlas_patients))
    scans = training_scans(config, categories)
    examples: list[Example] = []
    for index, load_scan in enumerate(scans):
        saved = store / f"scan_{index:05d}.safetensors" if store is not None else None
        if saved is not None and saved.is_file():
            examples += load_examples(saved)
        else:
            made = scan_examples(segmenter, config, categories, settings, contexts, load_scan(), index)
            if saved is not None:
                save_examples(made, saved)
            examples += made
        progress("prepare scans", (index + 1) / len(scans))
    return examples


def scan_examples(segmenter: Segmenter, config: RefineTrainingConfig, categories: list[str],
                  settings: SegmentSettings, contexts: ContextCache, scan: Scan, index: int) -> list[Example]:
    """One scan's examples: its tumor with its own prompt, with another organ's prompt, or its tumor-free image."""
    state = segmenter.encode(scan.image, scan.modality, mask=scan.mask)
    empty = torch.zeros_like(state.encoded.image)
    rng = np.random.default_rng([config.seed, index])
    prompts = [(scan.category, state.encoded.mask if scan.mask is not None else empty)]
    if scan.mask is not None:
        others = [c for c in categories if CATEGORIES[c].organ != CATEGORIES[scan.category].organ]
        prompts += [(str(rng.choice(others)), empty)] if others else []
    examples = []
    for text, target in prompts:
        prompt = parse_prompt(text, scan.modality)
        organ = prompt_organ(prompt)
        context = contexts.get(scan, organ, state.encoded.image, state.encoded.grid, scan.modality)
        if float((target * context.region).sum()) < MIN_TUMOR_IN_REGION * float(target.sum()):
            continue  # the prior missed the tumor's organ: as a target it would teach the head to miss tumors
        attention = segmenter.attention(state.encoded, prompt, context)
        samples = segmenter.pseudo_healthy(("train", index, text), state, [attention], settings)
        box = region_box(context.region, state.encoded.grid.resized)
        for sample in samples:
            inputs = refine_inputs(state.encoded.image, state.reconstruction, sample.image, attention,
                                   sample.feature_distance, context)
            examples.append(Example(inputs[box].half(), (target * context.region)[box],
                                    tuple(b.stop - b.start for b in box[2:])))
    segmenter.samples.clear()
    return examples


def save_examples(examples: list[Example], path: Path) -> None:
    """A scan's examples as one safetensors file (written atomically)."""
    from ..backbone.checkpoint import save_safetensors

    tensors = {}
    for n, example in enumerate(examples):
        tensors[f"{n}.inputs"], tensors[f"{n}.target"] = example.inputs, example.target.half()
    save_safetensors(tensors, path, {"valid": [list(e.valid) for e in examples]})


def load_examples(path: Path) -> list[Example]:
    import json

    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        valid = json.loads(handle.metadata()["valid"])
        return [Example(handle.get_tensor(f"{n}.inputs"), handle.get_tensor(f"{n}.target").float(), tuple(v))
                for n, v in enumerate(valid)]


def region_box(region: torch.Tensor, valid: tuple[int, int, int]) -> tuple[slice, ...]:
    """The bounding box of ``region`` inside the unpadded part, grown by :data:`BOX_MARGIN` voxels and to at
    least :data:`MIN_BOX` per side where the scan allows (examples keep only what training can reach)."""
    inside = region[0, 0, : valid[0], : valid[1], : valid[2]] > 0
    box = [slice(None), slice(None)]
    for axis, size in enumerate(valid):
        hits = torch.nonzero(inside.any(dim=tuple(a for a in range(3) if a != axis))).flatten()
        low, high = (int(hits[0]), int(hits[-1]) + 1) if len(hits) else (0, size)
        low, high = max(0, low - BOX_MARGIN), min(size, high + BOX_MARGIN)
        grow = max(0, min(MIN_BOX, size) - (high - low))
        low = max(0, low - grow // 2)
        box.append(slice(low, min(size, max(high, low + min(MIN_BOX, size)))))
    return tuple(box)


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
    return example.inputs[box].float(), example.target[box]


def example_probability(head: RefineHead, example: Example) -> torch.Tensor:
    """The head's probability [1, 1, *valid] on a stored example: the channels it reads, padded to its strides."""
    inputs = example.inputs.float()[:, [INPUT_CHANNELS.index(name) for name in head.config.inputs]]
    with torch.no_grad():
        return torch.sigmoid(_crop(head(_fit(inputs, head.size_multiple)), example.valid))


def _fit(tensor: torch.Tensor, multiple: int) -> torch.Tensor:
    """``tensor`` edge-padded at the far end of each axis to a size the head's strides divide."""
    pads = [(0, -n % multiple) for n in tensor.shape[2:]]
    return torch.nn.functional.pad(tensor, [v for p in reversed(pads) for v in p], mode="replicate")


def _crop(tensor: torch.Tensor, size: tuple[int, int, int]) -> torch.Tensor:
    return tensor[..., : size[0], : size[1], : size[2]]


def train_refine(segmenter: Segmenter, config: RefineTrainingConfig, out_dir: str | Path,
                 progress: ProgressCallback = silent) -> tuple[RefineHead, dict]:
    """Train (or resume) a refinement head; writes ``refine_head.safetensors`` with its report to ``out_dir``."""
    out_dir = Path(out_dir)
    run = ResumableRun(out_dir, asdict(config), save_refine, load_refine)  # refuses another run's folder now
    examples = prepare_examples(segmenter, config, out_dir / "examples", progress)
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
        for group in optimizer.param_groups:
            group["lr"] = one_cycle_lr(step, config.steps, config.learning_rate)
        loss = class_balanced_loss(head(inputs.flip(flips)), target.flip(flips))
        run.learn(head, optimizer, loss, step, losses, steps=config.steps, every=config.checkpoint_every)
        progress("train refine", (step + 1) / config.steps)
    head.eval()
    # the threshold delineates what is there; whether anything is there is the presence score's job, so
    # examples with an empty target (which any high threshold "wins") do not choose it
    with torch.no_grad():
        threshold, dice = best_dice_threshold(
            (example_probability(head, e), _crop(e.target, e.valid) > 0.5)
            for e in examples if e.target.any())
    head.config = replace(head.config, threshold=threshold)
    report = {"config": asdict(config), "categories": seen_categories(config, segmenter.backbone, phantoms=not config.data),
              "examples": len(examples), "steps": config.steps,
              "final_loss": float(np.mean(losses[-50:])) if losses else None,
              "threshold": threshold, "training_dice_at_threshold": dice}
    save_refine(head, out_dir / FINAL_NAME, extra=report)
    return head, report
