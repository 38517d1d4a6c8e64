"""What every head trainer shares: resumable checkpoints in an output folder, and the Dice-best threshold.

A run writes ``checkpoint.safetensors`` (the module) and ``training_state.pt`` (step, optimizer, losses
and the run's configuration, tensors and plain data only: loaded with ``weights_only=True``). A run
started again with the same folder and configuration continues from the last checkpoint; another
configuration is refused before any work.
"""

from __future__ import annotations

import json
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
    """Checkpoints of one training run in ``out_dir``, tied to its configuration (a JSON-able dict)."""

    def __init__(self, out_dir: str | Path, config: dict, save: Callable[[nn.Module, Path, dict], object],
                 load: Callable[[Path], tuple[nn.Module, dict]]) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.config = json.dumps(config, sort_keys=True)
        self._save, self._load = save, load
        self.state = self._saved_state()  # refuses a folder of another run before any work is done

    def _saved_state(self) -> dict | None:
        state_path, checkpoint = self.out_dir / STATE_NAME, self.out_dir / CHECKPOINT_NAME
        if not (state_path.is_file() and checkpoint.is_file()):
            return None
        state = torch.load(state_path, weights_only=True)
        if json.loads(state["config"]) != json.loads(self.config):
            raise DiffuGTSError("the output folder holds a training run with another configuration", path=self.out_dir,
                                hint="Use a new --out folder, or the same options as the interrupted run.")
        return state

    def restore(self, module: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[int, list[float]]:
        """Continue from the checkpoint: weights, optimizer, step and loss history ((0, []) when new)."""
        if self.state is None:
            return 0, []
        saved, _ = self._load(self.out_dir / CHECKPOINT_NAME)
        module.load_state_dict(saved.state_dict())
        optimizer.load_state_dict(self.state["optimizer"])
        return int(self.state["step"]), list(self.state["losses"])

    def learn(self, module: nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor, step: int,
              losses: list[float], *, steps: int, every: int) -> None:
        """One optimizer step on ``loss`` (step ``step`` of ``steps``, from 0), its loss kept in ``losses``; a
        checkpoint every ``every`` steps and after the last, so a resumed run continues exactly."""
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if (step + 1) % every == 0 or step + 1 == steps:
            self.checkpoint(module, optimizer, step + 1, losses)

    def checkpoint(self, module: nn.Module, optimizer: torch.optim.Optimizer, step: int, losses: list[float]) -> None:
        self._save(module, self.out_dir / CHECKPOINT_NAME, {"step": step})
        state = {"step": step, "optimizer": optimizer.state_dict(), "losses": losses, "config": self.config}
        with atomic_output(self.out_dir / STATE_NAME) as temp:
            torch.save(state, temp)


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
