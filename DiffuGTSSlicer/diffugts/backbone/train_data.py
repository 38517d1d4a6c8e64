"""Training data of the backbone trainer: volumes on the model grid (healthy regions only) and random patches.

A training config's sources are real volumes relative to ``--data`` (``{"kind": "volume"}``), synthetic
phantoms (``{"kind": "phantom"}``) or the rows of a training corpus (``{"kind": "corpus", "split": "train",
"modality": "CT"}``, read from ``--corpus``). Corpus rows train only when their licence allows shipping the
weights; rows that may hold an unannotated lesion are left out, and annotated tumors are excluded with a margin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DiffuGTSError, InputError
from ..io import Volume

PERMISSIVE = "permissive"


@dataclass
class TrainingVolume:
    name: str
    image: np.ndarray  # [X, Y, Z] in [0, 1] on the model grid
    allowed: np.ndarray  # bool [X, Y, Z]: healthy, not held out
    spacing: tuple[float, float, float]
    provenance: dict[str, str] = field(default_factory=dict)  # corpus rows: source, licence, sha256
    modality: str = "ct"  # as the networks are told it ('MR-T1c' gives the UNet MAISI's mri_t1 class)


def load_sources(train: dict[str, Any], config, *, data_dir: Path | None = None, corpus_dir: Path | None = None,
                 log=print) -> list[TrainingVolume]:
    """Every source of a training config on the model grid (``log`` says which corpus rows are left out)."""
    volumes = []
    for source in train["sources"]:
        kind = source.get("kind", "volume")
        if kind == "phantom":
            volumes.extend(_phantoms(source, config))
        elif kind == "corpus":
            volumes.extend(_corpus_volumes(source, config, corpus_dir, log))
        elif kind == "volume":
            volumes.append(_volume(source, config, data_dir))
        else:
            raise DiffuGTSError(f"unknown training source kind {kind!r}", hint="Use 'volume', 'phantom' or 'corpus'.")
    if not volumes:
        raise DiffuGTSError("the training config's sources hold no usable volume",
                            hint="Check the corpus has train-split rows of the modality, or list volumes.")
    return volumes


def on_model_grid(image: Volume, config, *, modality: str, tumor: Volume | None = None, margin_vox: int = 4,
                  name: str, provenance: dict[str, str] | None = None) -> TrainingVolume:
    """A volume on the model grid; a tumor mask, dilated by ``margin_vox`` model voxels, is kept out."""
    from .grid import to_model_grid

    tensor, mask_tensor, grid = to_model_grid(image, config, modality=modality, mask=tumor)
    x, y, z = grid.resized
    array = tensor[0, 0, :x, :y, :z].numpy()
    allowed = np.ones(array.shape, dtype=bool)
    if mask_tensor is not None:
        dilated = F.max_pool3d(mask_tensor, 2 * margin_vox + 1, 1, margin_vox)[0, 0, :x, :y, :z].numpy() > 0
        allowed &= ~dilated
    return TrainingVolume(name, array, allowed, grid.spacing_mm, provenance or {}, modality)


def _volume(source: dict[str, Any], config, data_dir: Path | None) -> TrainingVolume:
    from ..io import read_volume

    if data_dir is None:
        raise DiffuGTSError("this training config reads real volumes", hint="Pass --data DIR (../shared/data/real).")
    image = read_volume(data_dir / source["path"])
    mask = read_volume(data_dir / source["mask"]) if source.get("mask") else None
    volume = on_model_grid(image, config, modality="ct", tumor=mask, margin_vox=int(source.get("mask_margin_vox", 4)),
                           name=source["path"])
    for axis, start, stop in source.get("hold_out", []):  # fractions along RAS axes 0..2
        index = [slice(None)] * 3
        n = volume.image.shape[axis]
        index[axis] = slice(int(start * n), int(stop * n))
        volume.allowed[tuple(index)] = False
    return volume


def _phantoms(source: dict[str, Any], config) -> list[TrainingVolume]:
    try:
        from ..data.phantom import make_phantom
    except ImportError as error:
        raise DiffuGTSError(f"phantom generator unavailable ({error})") from None
    out = []
    for n in range(int(source.get("count", 8))):
        phantom = make_phantom("healthy", "CT", size=int(source.get("size", 96)), seed=int(source.get("seed", 0)) + n)
        out.append(on_model_grid(phantom.image, config, modality="ct", name=f"phantom-{n}"))
    return out


def corpus_rows(corpus_dir: Path | None, *, split: str, modality: str) -> list:
    """The corpus rows of ``split`` and ``modality`` (CT; MR also takes MR-T1, MR-FLAIR, ...)."""
    from ..data.corpus import read_corpus

    if corpus_dir is None:
        raise DiffuGTSError("this training config reads a training corpus",
                            hint="Pass --corpus DIR (a folder written by 'diffugts data corpus').")
    wanted = modality.upper()
    return [row for row in read_corpus(corpus_dir)
            if row.split == split and (row.modality.upper() == wanted or row.modality.upper().startswith(wanted + "-"))]


def training_rows(corpus_dir: Path | None, *, split: str = "train", modality: str = "CT") -> list:
    """The rows a backbone may learn from: permissive licence only (another is refused: shipped weights must
    not carry it), and no row that may hold an unannotated lesion."""
    rows = corpus_rows(corpus_dir, split=split, modality=modality)
    for row in rows:
        if row.licence_class != PERMISSIVE:
            raise InputError(f"corpus case {row.case_id} has a {row.licence_class} licence ({row.licence}): "
                             "the backbone trains on permissively licensed scans only", path=corpus_dir,
                             hint="Rebuild the corpus with 'diffugts data corpus --licence permissive'.")
    return [row for row in rows if row.tumor == "no" or (row.tumor == "yes" and row.tumor_mask)]


def raw_units_problem(image: Volume) -> str | None:
    """Why a CT's values are not Hounsfield units (nothing below 0: no air, no fat), or None."""
    if image.modality.upper().startswith("CT") and float(image.array.min()) >= 0:
        return "not in Hounsfield units (no value below 0: no air or fat)"
    return None


def _corpus_volumes(source: dict[str, Any], config, corpus_dir: Path | None, log) -> list[TrainingVolume]:
    out = []
    for row in training_rows(corpus_dir, split=source.get("split", "train"), modality=source.get("modality", "CT")):
        image = row.load_image()
        problem = raw_units_problem(image)
        if problem:
            log(f"corpus case {row.case_id} left out: {problem}")
            continue
        tumor = row.load_tumor() if row.tumor == "yes" else None
        provenance = {"case_id": row.case_id, "patient": row.patient, "source_dataset": row.source_dataset,
                      "source_file": row.source_file, "licence": row.licence, "sha256": row.sha256}
        margin = int(source.get("mask_margin_vox", 4))
        out.append(on_model_grid(image, config, modality=row.modality, tumor=tumor, margin_vox=margin,
                                 name=row.case_id, provenance=provenance))
    return out


def sample_corner(rng: np.random.Generator, allowed: np.ndarray, patch: tuple[int, ...], tries: int = 50,
                  body: np.ndarray | None = None):
    """A patch corner whose window is all ``allowed``; with ``body``, also centred on body (not air)."""
    shape = allowed.shape
    for _ in range(tries):
        corner = [int(rng.integers(0, max(1, s - p + 1))) for s, p in zip(shape, patch)]
        window = allowed[tuple(slice(c, c + p) for c, p in zip(corner, patch))]
        centre = tuple(min(c + p // 2, s - 1) for c, p, s in zip(corner, patch, shape))
        if window.all() and (body is None or body[centre]):
            return corner
    return None


def _patch(array: np.ndarray, corner, patch) -> np.ndarray:
    window = array[tuple(slice(c, c + p) for c, p in zip(corner, patch))]
    pads = [(0, p - w) for p, w in zip(patch, window.shape)]
    return np.pad(window, pads, mode="edge") if any(b for _, b in pads) else window


def fitted_patch(patch, shape, multiple: int) -> tuple[int, ...]:
    """The patch, shrunk (to a multiple of ``multiple``) along the axes where the volume is smaller: a thin
    volume gives thin patches rather than patches padded with copies of its edge."""
    return tuple(p if s >= p else max(multiple, s - s % multiple) for p, s in zip(patch, shape))


def image_batch(rng: np.random.Generator, volumes: list[TrainingVolume], patch, batch: int, body_fraction: float = 0.0,
                body_threshold: float = 0.3, multiple: int = 1) -> torch.Tensor:
    """Random patches of one volume (picked by its usable voxels); a ``body_fraction`` of them centred on
    tissue (value > ``body_threshold``, i.e. above -400 HU for CT), so that training is not spent on air."""
    weights = np.array([v.allowed.sum() for v in volumes], dtype=float)
    weights /= weights.sum()
    out: list[np.ndarray] = []
    while len(out) < batch:
        if not out:  # a volume where no window fits is given up for another
            volume = volumes[int(rng.choice(len(volumes), p=weights))]
            shape = fitted_patch(patch, volume.image.shape, multiple)
        body = volume.image > body_threshold if rng.random() < body_fraction else None
        corner = sample_corner(rng, volume.allowed, shape, body=body)
        if corner is None:
            out = []
        else:
            out.append(_patch(volume.image, corner, shape))
    return torch.from_numpy(np.stack(out)[:, None].astype(np.float32))


def augment(rng: np.random.Generator, batch: torch.Tensor, spec: dict[str, Any],
            window: tuple[float, float] | None = None) -> torch.Tensor:
    """A batch ``[B, C, X, Y, Z]`` randomly flipped along each axis (``"flip": true``, each axis with probability
    1/2) and, given the intensity ``window`` (raw units, e.g. HU) that maps to [0, 1], scaled about 0 and shifted
    in raw units (``"scale": 0.05`` draws a factor in [0.95, 1.05], ``"shift": 20`` a shift in [-20, 20]), then
    clipped to [0, 1] as the window clips. Draws from ``rng`` only what the spec asks for, so a step's batch
    stays a function of (seed, stage, step)."""
    if spec.get("flip"):
        axes = [2 + axis for axis in range(3) if rng.random() < 0.5]
        batch = batch.flip(axes) if axes else batch
    scale, shift = float(spec.get("scale", 0.0)), float(spec.get("shift", 0.0))
    if window is not None and (scale or shift):
        low, high = window
        factor, offset = 1 + float(rng.uniform(-scale, scale)), float(rng.uniform(-shift, shift))
        raw = batch * (high - low) + low
        batch = ((raw * factor + offset - low) / (high - low)).clamp(0, 1)
    return batch
