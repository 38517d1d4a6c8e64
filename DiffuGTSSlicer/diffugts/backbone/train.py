"""``diffugts train backbone``: train the demo backbone (VAE, then latent diffusion UNet) reproducibly.

Everything is in a training config (JSON): the backbone config, the data sources (healthy regions only:
tumor masks are dilated and excluded from every patch; optional held-out slabs), steps, time limits,
learning rates and seed. The result is two safetensors files plus ``training.json`` (what was done,
how long it took, the final losses), which the model card quotes.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DiffuGTSError
from ..progress import ProgressCallback, silent
from .config import CONFIG_DIR

DEFAULT_TRAIN_CONFIG = CONFIG_DIR / "train_demo_ct.json"


@dataclass
class TrainingVolume:
    name: str
    image: np.ndarray  # [X, Y, Z] in [0, 1] on the model grid
    allowed: np.ndarray  # bool [X, Y, Z]: healthy, not held out
    spacing: tuple[float, float, float]


def _load_sources(train: dict[str, Any], data_dir: Path | None, config) -> list[TrainingVolume]:
    from ..io import read_volume
    from .grid import to_model_grid

    volumes = []
    for source in train["sources"]:
        kind = source.get("kind", "volume")
        if kind == "phantom":
            volumes.extend(_phantoms(source, config))
            continue
        if data_dir is None:
            raise DiffuGTSError("this training config reads real volumes", hint="Pass --data DIR (../shared/data/real).")
        image = read_volume(data_dir / source["path"])
        mask = read_volume(data_dir / source["mask"]) if source.get("mask") else None
        tensor, mask_tensor, grid = to_model_grid(image, config, modality="ct", mask=mask)
        x, y, z = grid.resized
        array = tensor[0, 0, :x, :y, :z].numpy()
        allowed = np.ones(array.shape, dtype=bool)
        if mask_tensor is not None:
            margin = int(source.get("mask_margin_vox", 4))
            tumor = F.max_pool3d(mask_tensor, 2 * margin + 1, 1, margin)[0, 0, :x, :y, :z].numpy() > 0
            allowed &= ~tumor
        for axis, start, stop in source.get("hold_out", []):  # fractions along RAS axes 0..2
            index = [slice(None)] * 3
            n = array.shape[axis]
            index[axis] = slice(int(start * n), int(stop * n))
            allowed[tuple(index)] = False
        volumes.append(TrainingVolume(source["path"], array, allowed, grid.spacing_mm))
    if not volumes:
        raise DiffuGTSError("the training config lists no data sources")
    return volumes


def _phantoms(source: dict[str, Any], config) -> list[TrainingVolume]:
    try:
        from ..data.phantom import make_phantom
    except ImportError as error:
        raise DiffuGTSError(f"phantom generator unavailable ({error})") from None
    from .grid import to_model_grid

    out = []
    for n in range(int(source.get("count", 8))):
        phantom = make_phantom("healthy", "CT", size=int(source.get("size", 96)), seed=int(source.get("seed", 0)) + n)
        tensor, _, grid = to_model_grid(phantom.image, config, modality="ct")
        x, y, z = grid.resized
        array = tensor[0, 0, :x, :y, :z].numpy()
        out.append(TrainingVolume(f"phantom-{n}", array, np.ones(array.shape, bool), grid.spacing_mm))
    return out


def _sample_corner(rng: np.random.Generator, allowed: np.ndarray, patch: tuple[int, ...], tries: int = 50,
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


def _batch(rng, volumes: list[TrainingVolume], patch, batch: int, body_fraction: float = 0.0,
           body_threshold: float = 0.3):
    """Random patches; a ``body_fraction`` of them centred on tissue (value > ``body_threshold``, i.e.
    above -400 HU for CT), so that training is not spent on air."""
    weights = np.array([v.allowed.sum() for v in volumes], dtype=float)
    weights /= weights.sum()
    out = []
    while len(out) < batch:
        volume = volumes[int(rng.choice(len(volumes), p=weights))]
        body = volume.image > body_threshold if rng.random() < body_fraction else None
        corner = _sample_corner(rng, volume.allowed, patch, body=body)
        if corner is not None:
            out.append(_patch(volume.image, corner, patch))
    return torch.from_numpy(np.stack(out)[:, None].astype(np.float32))


def train_backbone(train_config: str | Path = DEFAULT_TRAIN_CONFIG, *, data_dir: str | Path | None = None,
                   out_dir: str | Path, progress: ProgressCallback = silent, log=print,
                   overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train VAE then UNet as the config says; write safetensors + training.json into ``out_dir``."""
    from .checkpoint import save_safetensors
    from .registry import build_backbone, get_config
    from .sliding import encode_volume

    path = Path(train_config)
    try:
        train = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DiffuGTSError(f"training config cannot be read ({error})", path=path) from None
    for key, value in (overrides or {}).items():  # "vae.steps": 10
        section, _, name = key.partition(".")
        train[section][name] = value
    threads = int(train.get("threads", 1))
    torch.set_num_threads(threads)
    seed = int(train.get("seed", 0))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    backbone_ref = train["backbone"]
    config_path = (path.parent / backbone_ref) if (path.parent / backbone_ref).is_file() else backbone_ref
    config = get_config(config_path)
    data_dir = None if data_dir is None else Path(data_dir)
    started = time.time()
    volumes = _load_sources(train, data_dir, config)
    log(f"data: {len(volumes)} volumes on the {config.spacing_mm} mm model grid: "
        + ", ".join(f"{v.name} {v.image.shape} ({v.allowed.mean():.0%} usable)" for v in volumes))
    backbone = build_backbone(config_path, random_init=True, trainable=True)
    ae, unet = backbone.autoencoder, backbone.unet
    report: dict[str, Any] = {"config": config.name, "train_config": train, "seed": seed, "threads": threads,
                              "torch": torch.__version__, "machine": platform.machine(),
                              "data": [{"name": v.name, "shape": list(v.image.shape),
                                        "usable_fraction": round(float(v.allowed.mean()), 3)} for v in volumes]}

    # ---- stage 1: VAE (L1 reconstruction + small KL) ------------------------------------------------
    spec = train["vae"]
    patch = tuple(spec.get("patch", config.patch_size))
    optimizer = torch.optim.Adam(ae.parameters(), lr=float(spec.get("lr", 1e-3)))
    ae.train()
    t0, step, losses = time.time(), 0, []
    while step < int(spec["steps"]) and time.time() - t0 < float(spec.get("time_limit_s", 1e9)):
        x = _batch(rng, volumes, patch, int(spec.get("batch", 1)), float(spec.get("body_fraction", 0.0)))
        reconstruction, z_mu, z_sigma = ae(x)
        kl = 0.5 * torch.mean(z_mu.pow(2) + z_sigma.pow(2) - torch.log(z_sigma.pow(2) + 1e-12) - 1)
        loss = F.l1_loss(reconstruction, x) + float(spec.get("kl_weight", 1e-6)) * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(F.l1_loss(reconstruction.detach(), x).item())
        step += 1
        if step % 25 == 0:
            log(f"vae step {step}: L1 {np.mean(losses[-25:]):.4f} ({time.time() - t0:.0f} s)")
        progress("train VAE", step / int(spec["steps"]))
    report["vae"] = {"steps": step, "seconds": round(time.time() - t0, 1),
                     "final_l1": round(float(np.mean(losses[-25:])), 5) if losses else None}
    ae.eval()
    for p in ae.parameters():
        p.requires_grad_(False)

    # ---- latents of every training volume (whole volume, sliding window), scale factor --------------
    backbone.scale_factor = 1.0
    latents, latent_body = [], []
    for v in volumes:
        image = torch.from_numpy(v.image)[None, None]
        multiple = config.latent_downsample
        pads = [(0, (-s) % multiple) for s in v.image.shape]
        image = torch.from_numpy(np.pad(image.numpy(), [(0, 0), (0, 0), *pads], mode="edge"))
        z = encode_volume(backbone, image)
        allowed = F.max_pool3d(torch.from_numpy(~np.pad(v.allowed, pads, mode="edge"))[None, None].float(),
                               multiple, multiple)[0, 0].numpy() == 0
        body = F.avg_pool3d(torch.from_numpy(np.pad(v.image, pads, mode="edge"))[None, None], multiple,
                            multiple)[0, 0].numpy() > 0.3
        latents.append(TrainingVolume(v.name, z[0].numpy(), allowed, v.spacing))
        latent_body.append(body)
    std = float(np.concatenate([lv.image[:, lv.allowed].ravel() for lv in latents]).std())
    scale_factor = 1.0 / max(std, 1e-6)
    backbone.scale_factor = scale_factor
    report["scale_factor"] = scale_factor

    # ---- stage 2: diffusion UNet on latent patches ----------------------------------------------------
    spec = train["unet"]
    lpatch = tuple(p // config.latent_downsample for p in spec.get("patch", config.patch_size))
    scheduler = backbone.scheduler
    optimizer = torch.optim.Adam(unet.parameters(), lr=float(spec.get("lr", 1e-3)))
    unet.train()
    cond = backbone.default_conditioning("ct")
    t0, step, losses = time.time(), 0, []

    def latent_batch(batch: int) -> torch.Tensor:
        out = []
        while len(out) < batch:
            index = int(rng.integers(len(latents)))
            lv = latents[index]
            body = latent_body[index] if rng.random() < float(spec.get("body_fraction", 0.0)) else None
            corner = _sample_corner(rng, lv.allowed, lpatch, body=body)
            if corner is not None:
                window = lv.image[(slice(None), *[slice(c, c + p) for c, p in zip(corner, lpatch)])]
                pads = [(0, 0)] + [(0, p - w) for p, w in zip(lpatch, window.shape[1:])]
                out.append(np.pad(window, pads, mode="edge"))
        return torch.from_numpy(np.stack(out).astype(np.float32)) * scale_factor

    while step < int(spec["steps"]) and time.time() - t0 < float(spec.get("time_limit_s", 1e9)):
        z = latent_batch(int(spec.get("batch", 4)))
        noise = torch.randn_like(z)
        if config.is_rectified_flow:
            t = scheduler.sample_timesteps(z)
            target = z - noise
        else:
            t = torch.randint(0, scheduler.num_train_timesteps, (z.shape[0],)).long()
            target = noise
        noisy = scheduler.add_noise(z, noise, t)
        output = unet(noisy, t, **backbone.conditioning_kwargs(cond, z.shape[0]))
        loss = F.mse_loss(output.float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        step += 1
        if step % 50 == 0:
            log(f"unet step {step}: MSE {np.mean(losses[-50:]):.4f} ({time.time() - t0:.0f} s)")
        progress("train UNet", step / int(spec["steps"]))
    report["unet"] = {"steps": step, "seconds": round(time.time() - t0, 1),
                      "final_mse": round(float(np.mean(losses[-50:])), 5) if losses else None}
    report["total_seconds"] = round(time.time() - started, 1)

    out = Path(out_dir)
    meta = {"backbone": config.name, "scale_factor": str(scale_factor), "seed": str(seed),
            "note": "research demo, not for clinical use"}
    for key, module in (("autoencoder", ae), ("unet", unet)):
        name = str(config.weights.get(key, ""))
        save_safetensors(module, out / (name if name.endswith(".safetensors") else f"{key}.safetensors"), meta)
    from ..io import atomic_output

    with atomic_output(out / "training.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2), encoding="utf-8")
    log(f"wrote {out} in {report['total_seconds']:.0f} s")
    return report
