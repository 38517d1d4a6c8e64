"""The backbone's validation figure: VAE reconstruction error inside the body, in raw units (HU for CT), on
scans it never trained on (the corpus's validation split)."""

from __future__ import annotations

import numpy as np
import torch

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
            figures = reconstruction_error(backbone, image, modality=modality)
            cases.append({"case_id": row.case_id, "mae": round(figures["mae"], 2),
                          "body_voxels": figures["body_voxels"]})
    maes = [c["mae"] for c in cases if np.isfinite(c.get("mae", np.nan))]
    return {"metric": "VAE reconstruction mean absolute error inside the body (raw units: HU for CT)",
            "mae": round(float(np.mean(maes)), 2) if maes else None, "cases": cases}
