"""``diffugts inpaint IMAGE --mask MASK --out DIR``: the pseudo-healthy scan, on the input's exact grid."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..errors import DiffuGTSError
from .options import add_image_options, output_folder, positive_int, torch_device


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "inpaint", help="make a pseudo-healthy scan from an image and a mask",
        description="Inpaint the masked region in the latent space of the frozen diffusion backbone (several "
        "seeds), decode, and write the pseudo-healthy scan and the VAE reconstruction of the input on the "
        "input's exact grid. Research software, not for clinical use.")
    add_image_options(parser)
    parser.add_argument("--mask", required=True, metavar="MASK", help="region to inpaint (nonzero), on the image grid")
    parser.add_argument("--backbone", default="demo-ct",
                        help="backbone name (demo-ct, maisi-rflow-v2, maisi-ddpm-ct-v1) or config .json")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], metavar="SEED", help="one output per seed")
    parser.add_argument("--steps", type=positive_int, help="denoising steps (default: the backbone's)")
    parser.add_argument("--start", type=float, help="start timestep as a fraction of the schedule, in (0, 1]")
    parser.add_argument("--sampler", choices=("ddim", "ddpm", "rflow"),
                        help="denoising scheduler: rflow for rectified-flow backbones; ddim (default) or ddpm for "
                        "DDPM backbones (ddpm: stochastic ancestral steps, --steps of them over the whole chain)")
    parser.add_argument("--dilate", type=int, choices=range(0, 9), default=1, metavar="0-8",
                        help="latent-voxel dilation of the mask (default 1)")
    parser.add_argument("--body-region", nargs=2, default=("chest", "abdomen"), metavar=("TOP", "BOTTOM"),
                        help="MAISI v1 body-region conditioning (head, chest, abdomen, pelvis)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from ..backbone import build_backbone
    from ..backbone.grid import from_model_grid, to_model_grid
    from ..backbone.inpaint import inpaint
    from ..io import read_volume, write_volume
    from ..segment.preflight import check_input
    from ..progress import for_mode

    progress = for_mode(args.progress)
    timings: dict[str, float] = {}
    started = time.time()
    image = read_volume(args.image)
    mask = read_volume(args.mask)
    if not np.any(mask.array):
        raise DiffuGTSError("the mask is empty: nothing to inpaint", path=args.mask,
                            hint="Pass a mask with the region to replace set to a nonzero value.")
    suffix = ".nii.gz"
    out = output_folder(args.out, [f"pseudo_healthy{suffix}", f"reconstruction{suffix}", "report.json",
                                   *(f"pseudo_healthy_seed{seed}{suffix}" for seed in args.seeds)])
    if len(set(args.seeds)) != len(args.seeds):
        raise DiffuGTSError("--seeds repeats a seed: each seed gives the same sample every time",
                            hint="Give distinct seeds, for example --seeds 0 1 2.")
    backbone = build_backbone(args.backbone, weights=args.weights, device=torch_device(args.device))
    config = backbone.config
    check_input(image, backbone, prompts=0, seeds=len(args.seeds), what="inpainting")
    tensor, mask_tensor, grid = to_model_grid(image, config, modality=args.modality, mask=mask)
    timings["prepare_s"] = time.time() - started
    cond = grid.conditioning(*args.body_region)
    t0 = time.time()
    with torch.no_grad():
        result = inpaint(backbone, tensor, mask_tensor, cond, seeds=args.seeds, num_steps=args.steps,
                         start_fraction=args.start, sampler=args.sampler, dilate=args.dilate, progress=progress)
    timings["inpaint_s"] = time.time() - t0
    t0 = time.time()
    written = {}
    pseudo = [from_model_grid(p, grid) for p in result.pseudo_healthy]
    mean = pseudo[0].like(np.mean([p.array for p in pseudo], axis=0).astype(np.float32))
    written["pseudo_healthy"] = write_volume(mean, out / f"pseudo_healthy{suffix}")
    if len(pseudo) > 1:
        for seed, volume in zip(result.seeds, pseudo):
            written[f"pseudo_healthy_seed{seed}"] = write_volume(volume, out / f"pseudo_healthy_seed{seed}{suffix}")
    written["reconstruction"] = write_volume(from_model_grid(result.reconstruction, grid),
                                             out / f"reconstruction{suffix}")
    timings["write_s"] = time.time() - t0
    timings["total_s"] = time.time() - started
    report = {
        "image": str(Path(args.image).resolve()), "mask": str(Path(args.mask).resolve()),
        "backbone": config.name, "weights": backbone.weights_info, "seeds": result.seeds,
        "steps": args.steps or config.inference.get("num_steps"),
        "start_fraction": args.start or config.inference.get("start_fraction"),
        "model_grid": {"size": list(grid.resized), "spacing_mm": list(grid.spacing_mm), "modality": grid.modality},
        "outputs": {k: str(v) for k, v in written.items()},
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "note": "research software, not for clinical use",
    }
    from ..io import atomic_output

    with atomic_output(out / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"wrote {written['pseudo_healthy']} ({len(result.seeds)} seed(s), {timings['total_s']:.1f} s)")
    return 0
