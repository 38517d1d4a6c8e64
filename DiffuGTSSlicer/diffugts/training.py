"""What every head trainer shares: resumable checkpoints in an output folder, and the Dice-best threshold.

A run writes ``checkpoint.safetensors`` (the module) and ``training_state.pt`` (step, optimizer, losses,
torch's random state, the trainer's own extra data and the run's configuration, tensors and plain data
only: loaded with ``weights_only=True``). A run started again with the same folder and configuration
continues from the last checkpoint; another configuration is refused before any work. A run of several
stages (the backbone: VAE, then UNet) names each stage, whose files get the name as a prefix.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import DiffuGTSError
from .io import atomic_output

CHECKPOINT_NAME, STATE_NAME = "checkpoint.safetensors", "training_state.pt"
THRESHOLDS = np.round(np.arange(0.05, 1.0, 0.05), 2)


class ResumableRun:
    """Checkpoints of one training run (or one ``name``d stage of it) in ``out_dir``, tied to its configuration
    (a JSON-able dict). ``save``/``load`` write and read the module's file (default: its safetensors state
    dict); checkpoints come every ``every`` steps (see ``learn``) and, with ``every_s``, every that many seconds."""

    def __init__(self, out_dir: str | Path, config: dict,
                 save: Callable[[nn.Module, Path, dict], object] | None = None,
                 load: Callable[[Path], tuple[nn.Module, dict]] | None = None, *, name: str = "",
                 every_s: float | None = None) -> None:
        from .backbone.checkpoint import save_safetensors

        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        prefix = f"{name}_" if name else ""
        self.checkpoint_path = self.out_dir / f"{prefix}{CHECKPOINT_NAME}"
        self.state_path = self.out_dir / f"{prefix}{STATE_NAME}"
        self.config = json.dumps(config, sort_keys=True)
        self._save, self._load = save or save_safetensors, load
        self.every_s = every_s
        self._last_checkpoint = time.monotonic()
        self.state = self._saved_state()  # refuses a folder of another run before any work is done

    def _saved_state(self) -> dict | None:
        if not (self.state_path.is_file() and self.checkpoint_path.is_file()):
            return None
        try:
            state = torch.load(self.state_path, weights_only=True)
        except Exception as error:  # noqa: BLE001 - UnpicklingError and friends: anything but tensors and plain data
            raise DiffuGTSError(f"refused to load the training state: not plain tensors and data "
                                f"({type(error).__name__})", path=self.state_path,
                                hint="Delete the file (and its checkpoint) to start that stage over.") from None
        if json.loads(state["config"]) != json.loads(self.config):
            raise DiffuGTSError("the output folder holds a training run with another configuration (settings or "
                                "training data)", path=self.out_dir,
                                hint="Use a new --out folder, or the same options and data as the interrupted run.")
        return state

    @property
    def extra(self) -> dict:
        """What the trainer saved with the last checkpoint besides the step and losses ({} when new)."""
        return dict(self.state.get("extra", {})) if self.state else {}

    def restore(self, module: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[int, list[float]]:
        """Continue from the checkpoint: weights, optimizer, torch's random state, step and loss history
        ((0, []) when new)."""
        if self.state is None:
            return 0, []
        self.load_weights(module)
        optimizer.load_state_dict(self.state["optimizer"])
        if "torch_rng" in self.state:
            torch.set_rng_state(self.state["torch_rng"])
        return int(self.state["step"]), list(self.state["losses"])

    def load_weights(self, module: nn.Module) -> None:
        """The checkpoint's weights into ``module`` (a finished stage's network for the next stage)."""
        if self._load is None:
            from .backbone.checkpoint import load_into

            saved_step = load_into(module, self.checkpoint_path, "checkpoint").get("step")
            if self.state is not None and saved_step != str(self.state["step"]):  # killed between the two writes
                raise DiffuGTSError(f"the checkpoint (step {saved_step}) and its training state (step "
                                    f"{self.state['step']}) differ", path=self.checkpoint_path,
                                    hint="Delete both files to start that stage over.")
        else:
            module.load_state_dict(self._load(self.checkpoint_path)[0].state_dict())

    def learn(self, module: nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor, step: int,
              losses: list[float], *, steps: int, every: int, recorded: float | None = None,
              extra: dict | None = None) -> None:
        """One optimizer step on ``loss`` (step ``step`` of ``steps``, from 0), its loss (or ``recorded``) kept in
        ``losses``; a checkpoint (with ``extra``) every ``every`` steps, every ``every_s`` seconds and after the
        last, so a resumed run continues exactly."""
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item() if recorded is None else recorded)
        due = self.every_s is not None and time.monotonic() - self._last_checkpoint >= self.every_s
        if due or (step + 1) % every == 0 or step + 1 == steps:
            self.checkpoint(module, optimizer, step + 1, losses, extra)

    def checkpoint(self, module: nn.Module, optimizer: torch.optim.Optimizer, step: int, losses: list[float],
                   extra: dict | None = None) -> None:
        self._save(module, self.checkpoint_path, {"step": step})
        state = {"step": step, "optimizer": optimizer.state_dict(), "losses": losses, "config": self.config,
                 "torch_rng": torch.get_rng_state(), "extra": extra or {}}
        with atomic_output(self.state_path) as temp:
            torch.save(state, temp)
        self._last_checkpoint = time.monotonic()


def one_cycle_lr(step: int, steps: int, peak: float, warmup: float = 0.1) -> float:
    """The learning rate of ``step`` (from 0) of ``steps``: linear warm-up to ``peak`` over the first ``warmup``
    of the run, then cosine decay towards zero. A function of the step alone, so a resumed run follows it exactly."""
    import math

    rise = max(1, round(warmup * steps))
    if step < rise:
        return peak * (step + 1) / rise
    return peak * 0.5 * (1.0 + math.cos(math.pi * (step - rise) / max(1, steps - rise)))


def best_dice_threshold(pairs: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> tuple[float, float]:
    """(threshold, mean Dice) maximizing the mean Dice over (probability, boolean target) pairs."""
    dice, count = np.zeros(len(THRESHOLDS)), 0
    for probability, target in pairs:
        count += 1
        for n, threshold in enumerate(THRESHOLDS):
            predicted = probability > threshold
            overlap = (predicted & target).sum().item()
            total = predicted.sum().item() + target.sum().item()
            dice[n] += 2 * overlap / total if total else 1.0
    best = int(np.argmax(dice))
    return float(THRESHOLDS[best]), float(dice[best] / max(1, count))


def class_balanced_loss(logits: torch.Tensor, target: torch.Tensor, max_positive_weight: float = 20.0) -> torch.Tensor:
    """Binary cross-entropy with positives weighed up to the background (capped), plus soft Dice when the
    target has any positive; an empty target is plain cross-entropy (it must stay empty)."""
    import torch.nn.functional as F

    if not target.any():
        return F.binary_cross_entropy_with_logits(logits, target)
    positives = target.sum().clamp(min=1)
    weight = ((target.numel() - positives) / positives).clamp(max=max_positive_weight)
    bce = F.binary_cross_entropy_with_logits(logits, target, pos_weight=weight)
    probability = torch.sigmoid(logits)
    dice = 1 - (2 * (probability * target).sum() + 1) / (probability.sum() + target.sum() + 1)
    return bce + dice
