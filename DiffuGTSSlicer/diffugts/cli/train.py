"""``diffugts train backbone ...``: training commands (``train attention`` / ``train refine`` join later)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import DiffuGTSError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train the demo backbone (more heads later)",
                                   description="Training commands. Each reads a JSON training config.")
    targets = parser.add_subparsers(dest="target", metavar="TARGET")
    backbone = targets.add_parser(
        "backbone", help="train the demo diffusion backbone (VAE, then latent diffusion UNet)",
        description="Train the demo backbone reproducibly from a training config (seed, data, steps). "
        "Writes autoencoder/unet safetensors and training.json into --out.")
    backbone.add_argument("--config", metavar="FILE", help="training config (default: the bundled train_demo_ct.json)")
    backbone.add_argument("--data", metavar="DIR", help="folder the config's real volumes are relative to")
    backbone.add_argument("--out", required=True, metavar="DIR", help="output folder for the weights")
    backbone.add_argument("--vae-steps", type=int, help="override the VAE steps")
    backbone.add_argument("--unet-steps", type=int, help="override the UNet steps")
    backbone.set_defaults(func=run_backbone)
    parser.set_defaults(func=lambda args: _no_target(parser))


def _no_target(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_backbone(args: argparse.Namespace) -> int:
    from ..backbone.train import DEFAULT_TRAIN_CONFIG, train_backbone
    from ..progress import for_mode

    config = Path(args.config) if args.config else DEFAULT_TRAIN_CONFIG
    if not config.is_file():
        raise DiffuGTSError("training config not found", path=config)
    if args.data and not Path(args.data).is_dir():
        raise DiffuGTSError("--data folder not found", path=args.data)
    overrides = {}
    if args.vae_steps is not None:
        overrides["vae.steps"] = args.vae_steps
    if args.unet_steps is not None:
        overrides["unet.steps"] = args.unet_steps
    train_backbone(config, data_dir=args.data, out_dir=args.out, progress=for_mode(args.progress),
                   overrides=overrides)
    return 0
