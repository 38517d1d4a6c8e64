"""The backbone's validation figure: VAE reconstruction error inside the body, in raw units (HU for CT), on
scans it never trained on (the corpus's validation split)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..errors import DiffuGTSError
from ..io import Volume


def reconstruction_error(backbone, image: Volume, *, modality: str) -> dict[str, float]:
    """Mean absolute error of the VAE reconstruction inside the body on the model grid (raw units: the
    intensity window clips both sides alike), and the body's size in model voxels."""
    from ..evaluation.baselines import body_mask
    from .grid import to_model_grid
    from .sliding import decode_latent, encode_volume

    tensor, _, grid = to_model_grid(image, backbone.config, modality=modality)
    reconstruction = decode_latent(backbone, encode_volume(backbone, tensor)).clamp(0, 1)
    original, decoded = (grid.intensity.inverse(grid.crop(t)[0, 0].numpy()) for t in (tensor, reconstruction))
    # body_mask reads only the array and modality; on the model grid it is the body the networks see
    body = body_mask(Volume(original.transpose(2, 1, 0), grid.spacing_mm, (0.0, 0.0, 0.0), np.eye(3),
                            modality=image.modality)).transpose(2, 1, 0)
    error = np.abs(decoded - original)[body]
    return {"mae": float(error.mean()) if error.size else float("nan"), "body_voxels": int(body.sum())}


def validate(backbone, rows: list, *, modality: str) -> dict:
    """Reconstruction error on each validation row and their mean (by case, not by voxel); a CT not in
    Hounsfield units is listed and left out."""
    from .train_data import raw_units_problem

    cases = []
    backbone.autoencoder.eval()
    with torch.no_grad():
        for row in rows:
            image = row.load_image()
            problem = raw_units_problem(image)
            if problem:
                cases.append({"case_id": row.case_id, "left_out": problem})
                continue
            figures = reconstruction_error(backbone, image, modality=row.modality or modality)  # MR: its sequence
            cases.append({"case_id": row.case_id, "mae": round(figures["mae"], 2),
                          "body_voxels": figures["body_voxels"]})
    maes = [c["mae"] for c in cases if np.isfinite(c.get("mae", np.nan))]
    return {"metric": "VAE reconstruction mean absolute error inside the body (raw units: HU for CT)",
            "mae": round(float(np.mean(maes)), 2) if maes else None, "cases": cases}


class BestWeights:
    """Early stopping by validation: the figure (lower is better) every ``every`` steps of a stage and at its
    last step, and the weights of the best so far in ``path``; ``state`` (best step and figure, last step
    validated) goes into the stage's checkpoint, so a resumed run keeps the best so far."""

    def __init__(self, path: Path, every: int, measure: Callable[[], float | None], state: dict) -> None:
        self.path, self.every, self.measure = path, every, measure
        self.step, self.mae = state.get("best_step"), state.get("best_mae")
        self.validated = int(state.get("validated_step", 0))

    @property
    def state(self) -> dict:
        return {"best_step": self.step, "best_mae": self.mae, "validated_step": self.validated}

    def due(self, step: int, steps: int) -> bool:
        return step > self.validated and (step % self.every == 0 or step == steps)

    def update(self, module: torch.nn.Module, step: int) -> float | None:
        """Validate ``module`` at ``step``; keep its weights when they are the best so far."""
        from .checkpoint import save_safetensors

        mae = self.measure()
        self.validated = step
        if mae is not None and np.isfinite(mae) and (self.mae is None or mae < self.mae):
            save_safetensors(module, self.path, {"step": step})
            self.step, self.mae = step, mae
        return mae

    def load(self, module: torch.nn.Module) -> None:
        """The best weights into ``module`` (nothing when no validation gave a figure)."""
        from .checkpoint import load_into

        if self.step is None:
            return
        saved = load_into(module, self.path, "best").get("step") if self.path.is_file() else None
        if saved != str(self.step):
            raise DiffuGTSError(f"the best weights (step {saved}) are not those of the training state (step "
                                f"{self.step})", path=self.path, hint="Delete the stage's files to start it over.")
