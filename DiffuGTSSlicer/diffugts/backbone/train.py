"""``diffugts train backbone``: train the demo backbone (VAE, then latent diffusion UNet) reproducibly, resumably.

Everything is in a training config (JSON): the backbone config, the data sources (healthy regions only:
tumor masks are dilated and excluded from every patch; optional held-out slabs; or the train split of a
corpus), steps, time limits, learning rates and seed. Each stage checkpoints into the output folder every few
minutes (``vae_``/``unet_`` checkpoint files: weights, optimizer, step, losses, torch's random state; the
patches of a step come from a generator seeded by (seed, stage, step)), so the same command started again
continues exactly where it stopped, and refuses a folder of another configuration. ``time_limit_s`` sizes one
invocation to a session. Each invocation ends with the validation figure (VAE reconstruction error in the body
on the corpus's validation split, when the config names one) and ``training.json``; a finished run also
writes the two safetensors files, which the model card quotes. ``losses.jsonl`` logs losses and validations.
With ``vae.validate_every`` the VAE is validated every that many steps (and at its last); the best weights
(``vae_best.safetensors``, their step and figure in the checkpoint) are the ones the UNet learns the latents of
and the ones written. ``augment`` (per stage) flips patches and scales/shifts their raw intensity, drawn like
the patches from the step's generator.
"""

from __future__ import annotations

import json
import math
import platform
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DiffuGTSError
from ..io import atomic_output
from ..progress import ProgressCallback, silent
from ..training import ResumableRun
from .config import CONFIG_DIR
from .train_data import TrainingVolume, augment, corpus_rows, fitted_patch, image_batch, load_sources, sample_corner
from .train_validation import BestWeights, validate

DEFAULT_TRAIN_CONFIG = CONFIG_DIR / "train_demo_ct_real.json"  # train_demo_ct.json: the recipe of the shipped weights
LOG_NAME = "losses.jsonl"
STAGES = ("vae", "unet")
LOG_EVERY = {"vae": 25, "unet": 50}


class Budget:
    """One invocation's time limit: training stops once it has passed, but only after a step, so that
    every invocation makes progress."""

    def __init__(self, seconds: float | None) -> None:
        self.end = math.inf if seconds is None else time.monotonic() + float(seconds)
        self.steps = 0

    def spent(self) -> bool:
        return self.steps > 0 and time.monotonic() >= self.end


def read_train_config(path: Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    try:
        train = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DiffuGTSError(f"training config cannot be read ({error})", path=path) from None
    for key, value in (overrides or {}).items():  # "vae.steps": 10
        section, _, name = key.partition(".")
        train[section][name] = value
    return train


def learning_rate(spec: dict[str, Any], step: int) -> float:
    """``lr``, decayed along a cosine to ``lr_final`` over the stage's steps when the spec gives one (a function
    of the step alone: nothing to checkpoint)."""
    lr = float(spec.get("lr", 1e-3))
    if "lr_final" not in spec:
        return lr
    final = float(spec["lr_final"])
    return final + 0.5 * (lr - final) * (1 + math.cos(math.pi * min(1.0, step / int(spec["steps"]))))


class LossLog:
    """``losses.jsonl`` in the output folder: one JSON object per logged block of steps or validation."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def trim(self, stage: str, step: int) -> None:
        """Drop the stage's lines past ``step``: steps after the last checkpoint are done again."""
        if not self.path.is_file():
            return
        lines = self.path.read_text(encoding="utf-8").splitlines()
        entries = [json.loads(line) for line in lines]
        kept = [line for line, e in zip(lines, entries) if not (e.get("stage") == stage and e["step"] > step)]
        if len(kept) != len(lines):
            with atomic_output(self.path) as temp:
                temp.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")

    def write(self, entry: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")


def run_stage(stage: str, module: torch.nn.Module, run: ResumableRun, spec: dict[str, Any],
              loss_of: Callable[[np.random.Generator], tuple[torch.Tensor, float | None]], *, seed: int,
              budget: Budget, losses_log: LossLog, every: int, log, progress: ProgressCallback,
              extra: dict[str, Any] | None = None, best: BestWeights | None = None) -> dict[str, Any]:
    """Train (or continue) one stage until its steps or its own time limit are done, or the invocation's
    budget is spent; checkpoint (with ``extra``) where it stops. With ``best``, validate as it says (each
    validation is logged and checkpointed) and keep the best weights."""
    steps, limit = int(spec["steps"]), float(spec.get("time_limit_s", math.inf))
    optimizer = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=learning_rate(spec, 0))
    step, losses = run.restore(module, optimizer)
    seconds = float(run.extra.get("seconds", 0.0))
    losses_log.trim(stage, step)
    log_every = LOG_EVERY[stage]
    started = time.monotonic()

    def state() -> dict[str, Any]:
        return {**(extra or {}), **(best.state if best else {}), "seconds": seconds + time.monotonic() - started}

    def validate_if_due() -> None:  # also right after a restore: a kill may have come before the validation
        if best is None or not best.due(step, steps):
            return
        mae = best.update(module, step)
        run.checkpoint(module, optimizer, step, losses, state())
        log(f"{stage} step {step}/{steps}: validation {mae} (best {best.mae} at step {best.step})")
        losses_log.write({"stage": stage, "step": step, "validation_mae": mae, "best_mae": best.mae,
                          "best_step": best.step, "seconds": round(state()["seconds"], 1)})

    validate_if_due()
    module.train()
    while step < steps and seconds + time.monotonic() - started < limit and not budget.spent():
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(spec, step)
        loss, recorded = loss_of(np.random.default_rng([seed, STAGES.index(stage), step]))
        run.learn(module, optimizer, loss, step, losses, steps=steps, every=every, recorded=recorded, extra=state())
        step, budget.steps = step + 1, budget.steps + 1
        if step % log_every == 0:
            mean = float(np.mean(losses[-log_every:]))
            elapsed = seconds + time.monotonic() - started
            log(f"{stage} step {step}/{steps}: loss {mean:.4f} ({elapsed:.0f} s)")
            losses_log.write({"stage": stage, "step": step, "loss": round(mean, 6), "seconds": round(elapsed, 1)})
        validate_if_due()
        module.train()
        progress(f"train {stage}", step / steps)
    run.checkpoint(module, optimizer, step, losses, state())
    seconds += time.monotonic() - started
    report = {"steps": step, "seconds": round(seconds, 1), "done": step >= steps or seconds >= limit,
              "final_loss": round(float(np.mean(losses[-log_every:])), 5) if losses else None}
    return {**report, **({"best_step": best.step, "best_mae": best.mae} if best else {})}


def _latents(backbone, volumes: list[TrainingVolume]) -> tuple[list[TrainingVolume], list[np.ndarray]]:
    """Every training volume's latent (whole volume, sliding window) with its usable and body latent voxels."""
    from .sliding import encode_volume

    multiple = backbone.config.latent_downsample
    latents, bodies = [], []
    for v in volumes:
        pads = [(0, (-s) % multiple) for s in v.image.shape]
        image = np.pad(v.image, pads, mode="edge")
        z = encode_volume(backbone, torch.from_numpy(image)[None, None])
        allowed = F.max_pool3d(torch.from_numpy(~np.pad(v.allowed, pads, mode="edge"))[None, None].float(),
                               multiple, multiple)[0, 0].numpy() == 0
        bodies.append(F.avg_pool3d(torch.from_numpy(image)[None, None], multiple, multiple)[0, 0].numpy() > 0.3)
        latents.append(TrainingVolume(v.name, z[0].numpy(), allowed, v.spacing, modality=v.modality))
    return latents, bodies


def _latent_batch(rng, latents: list[TrainingVolume], bodies: list[np.ndarray], lpatch, batch: int,
                  body_fraction: float, scale_factor: float, multiple: int, picked: list[int] | None = None
                  ) -> torch.Tensor:
    """Random latent patches of one latent volume (thin ones give thin patches, as in ``image_batch``); the
    volume's index is appended to ``picked``."""
    out: list[np.ndarray] = []
    while len(out) < batch:
        if not out:  # a volume where no window fits is given up for another
            index = int(rng.integers(len(latents)))
            lv = latents[index]
            shape = fitted_patch(lpatch, lv.allowed.shape, multiple)
        body = bodies[index] if rng.random() < body_fraction else None
        corner = sample_corner(rng, lv.allowed, shape, body=body)
        if corner is None:
            out = []
        else:
            window = lv.image[(slice(None), *[slice(c, c + p) for c, p in zip(corner, shape)])]
            pads = [(0, 0)] + [(0, p - w) for p, w in zip(shape, window.shape[1:])]
            out.append(np.pad(window, pads, mode="edge"))
    if picked is not None:
        picked.append(index)
    return torch.from_numpy(np.stack(out).astype(np.float32)) * scale_factor


def train_backbone(train_config: str | Path = DEFAULT_TRAIN_CONFIG, *, data_dir: str | Path | None = None,
                   corpus_dir: str | Path | None = None, out_dir: str | Path, time_limit_s: float | None = None,
                   progress: ProgressCallback = silent, log=print,
                   overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train (or continue) VAE then UNet as the config says; write training.json (and, once both stages are
    done, the safetensors files) into ``out_dir``."""
    from .checkpoint import save_safetensors
    from .grid import size_multiple
    from .registry import build_backbone, get_config

    budget = Budget(time_limit_s)
    path = Path(train_config)
    train = read_train_config(path, overrides)
    threads = int(train.get("threads", 1))
    torch.set_num_threads(threads)
    seed = int(train.get("seed", 0))
    backbone_ref = train["backbone"]
    config_path = (path.parent / backbone_ref) if (path.parent / backbone_ref).is_file() else backbone_ref
    config = get_config(config_path)
    data_dir = None if data_dir is None else Path(data_dir)
    corpus_dir = None if corpus_dir is None else Path(corpus_dir)
    started = time.time()
    volumes = load_sources(train, config, data_dir=data_dir, corpus_dir=corpus_dir, log=log)
    log(f"data: {len(volumes)} volumes on the {config.spacing_mm} mm model grid: "
        + ", ".join(f"{v.name} {v.image.shape} ({v.allowed.mean():.0%} usable)" for v in volumes))
    data = [{"name": v.name, "shape": list(v.image.shape), "usable_fraction": round(float(v.allowed.mean()), 3),
             **v.provenance} for v in volumes]
    out = Path(out_dir)
    identity = {"train": train, "backbone": config.to_dict(), "data": data}
    every, every_s = int(train.get("checkpoint_every", 500)), float(train.get("checkpoint_every_s", 300))
    runs = {stage: ResumableRun(out, identity, name=stage, every_s=every_s) for stage in STAGES}
    losses_log = LossLog(out / LOG_NAME)
    torch.manual_seed(seed)
    backbone = build_backbone(config_path, random_init=True, trainable=True)
    ae, unet = backbone.autoencoder, backbone.unet
    report: dict[str, Any] = {"config": config.name, "train_config": train, "seed": seed, "threads": threads,
                              "torch": torch.__version__, "machine": platform.machine(), "data": data}
    common = {"seed": seed, "budget": budget, "losses_log": losses_log, "every": every, "log": log,
              "progress": progress}

    validation = train.get("validation")
    modality = validation.get("modality", "CT") if validation else "CT"
    rows = corpus_rows(corpus_dir, split=validation.get("split", "validation"), modality=modality) if validation else []

    # ---- stage 1: VAE (L1 reconstruction + small KL), the weights of the best validation kept -------------
    spec = train["vae"]
    patch = tuple(spec.get("patch", config.patch_size))
    best = None
    if spec.get("validate_every"):
        if not validation:
            raise DiffuGTSError("the training config's 'vae.validate_every' needs a 'validation' section", path=path,
                                hint='Add "validation": {"kind": "corpus", "split": "validation", "modality": "CT"}.')
        best = BestWeights(out / "vae_best.safetensors", int(spec["validate_every"]),
                           lambda: validate(backbone, rows, modality=modality)["mae"], runs["vae"].extra)
    intensity = config.intensity.get("ct", {})
    # CT: scaled and shifted in HU; other modalities (per-volume scaling): in the [0, 1] units they are mapped to
    window = tuple(intensity["window"]) if intensity.get("kind") == "clip" else (0.0, 1.0)

    def vae_loss(rng: np.random.Generator) -> tuple[torch.Tensor, float]:
        x = image_batch(rng, volumes, patch, int(spec.get("batch", 1)), float(spec.get("body_fraction", 0.0)),
                        multiple=config.latent_downsample)
        x = augment(rng, x, spec.get("augment", {}), window)
        reconstruction, z_mu, z_sigma = ae(x)
        kl = 0.5 * torch.mean(z_mu.pow(2) + z_sigma.pow(2) - torch.log(z_sigma.pow(2) + 1e-12) - 1)
        l1 = F.l1_loss(reconstruction, x)
        return l1 + float(spec.get("kl_weight", 1e-6)) * kl, l1.item()

    report["vae"] = run_stage("vae", ae, runs["vae"], spec, vae_loss, **common, best=best)
    report["vae"]["final_l1"] = report["vae"].pop("final_loss")
    if best is not None and report["vae"]["done"]:
        best.load(ae)  # the UNet learns the best VAE's latents, and that VAE is the one written
    ae.eval()
    for p in ae.parameters():
        p.requires_grad_(False)

    # ---- stage 2: diffusion UNet on latent patches (scale factor from the latents' spread) ------------
    spec = train["unet"]
    saved_scale = runs["unet"].extra.get("scale_factor")
    if report["vae"]["done"] and not budget.spent():
        backbone.scale_factor = 1.0
        latents, bodies = _latents(backbone, volumes)
        if saved_scale is None:
            std = float(np.concatenate([lv.image[:, lv.allowed].ravel() for lv in latents]).std())
            saved_scale = 1.0 / max(std, 1e-6)
        scale_factor = float(saved_scale)
        backbone.scale_factor = scale_factor
        lpatch = tuple(p // config.latent_downsample for p in spec.get("patch", config.patch_size))
        unet_multiple = size_multiple(config) // config.latent_downsample
        scheduler = backbone.scheduler

        def unet_loss(rng: np.random.Generator) -> tuple[torch.Tensor, None]:
            picked: list[int] = []
            z = _latent_batch(rng, latents, bodies, lpatch, int(spec.get("batch", 4)),
                              float(spec.get("body_fraction", 0.0)), scale_factor, unet_multiple, picked)
            cond = backbone.default_conditioning(latents[picked[0]].modality)  # its sequence's class (MR)
            z = augment(rng, z, spec.get("augment", {}))
            noise = torch.randn_like(z)
            if config.is_rectified_flow:
                t = scheduler.sample_timesteps(z)
                target = z - noise
            else:
                t = torch.randint(0, scheduler.num_train_timesteps, (z.shape[0],)).long()
                target = noise
            output = unet(scheduler.add_noise(z, noise, t), t, **backbone.conditioning_kwargs(cond, z.shape[0]))
            return F.mse_loss(output.float(), target), None

        report["unet"] = run_stage("unet", unet, runs["unet"], spec, unet_loss, **common,
                                   extra={"scale_factor": scale_factor})
        report["unet"]["final_mse"] = report["unet"].pop("final_loss")
        report["scale_factor"] = scale_factor
    report["training_seconds"] = round(sum(report[s]["seconds"] for s in STAGES if s in report), 1)
    done = report.get("unet", {}).get("done")
    report["status"] = "complete" if done else "stopped: run the same command again to continue"

    # ---- validation: VAE reconstruction error on scans never trained on --------------------------------
    if validation:
        report["validation"] = validate(backbone, rows, modality=modality)
        best_loaded = best is not None and report["vae"]["done"] and best.step is not None
        losses_log.write({"stage": "validation", "vae_step": best.step if best_loaded else report["vae"]["steps"],
                          "mae": report["validation"]["mae"]})
        log(f"validation: VAE reconstruction MAE in the body {report['validation']['mae']} on {len(rows)} scans")
    report["invocation_seconds"] = round(time.time() - started, 1)

    if report["status"] == "complete":
        meta = {"backbone": config.name, "scale_factor": str(report["scale_factor"]), "seed": str(seed),
                "note": "research demo, not for clinical use"}
        for key, module in (("autoencoder", ae), ("unet", unet)):
            name = str(config.weights.get(key, ""))
            save_safetensors(module, out / (name if name.endswith(".safetensors") else f"{key}.safetensors"), meta)
    with atomic_output(out / "training.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2), encoding="utf-8")
    log(f"{report['status']}: wrote {out} ({report['invocation_seconds']:.0f} s this invocation)")
    return report
