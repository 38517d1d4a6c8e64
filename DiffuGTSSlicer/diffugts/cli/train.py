"""``diffugts train backbone|attention|refine|calibrate ...``: training commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..attention.config import AttentionTrainingConfig
from ..errors import DiffuGTSError
from ..segment.training_config import RefineTrainingConfig
from .options import positive_int


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train the demo backbone, the attention heads and the refinement head",
                                   description="Training commands. Each reads a JSON training config.")
    targets = parser.add_subparsers(dest="target", metavar="TARGET")
    backbone = targets.add_parser(
        "backbone", help="train the demo diffusion backbone (VAE, then latent diffusion UNet)",
        description="Train the demo backbone reproducibly from a training config (seed, data, steps). "
        "Resumable: it checkpoints into --out every few minutes, and the same command run again continues where "
        "it stopped. Writes training.json (with the validation figure) after every run, and autoencoder/unet "
        "safetensors into --out once both stages are done.")
    backbone.add_argument("--config", metavar="FILE", help="training config, a file or a bundled one by name (default "
                          "train_demo_ct_real.json, which trains on --corpus; train_demo_mr.json trains demo-mr)")
    backbone.add_argument("--data", metavar="DIR", help="folder the config's real volumes are relative to")
    backbone.add_argument("--corpus", metavar="DIR", help="training corpus ('diffugts data corpus --out DIR') for a "
                          "config with corpus sources: its train split trains, its validation split validates")
    backbone.add_argument("--out", required=True, metavar="DIR", help="output folder (checkpoints, weights)")
    backbone.add_argument("--time-limit-s", type=positive_int, metavar="SECONDS",
                          help="stop training after this long (checkpointed; run again to continue)")
    backbone.add_argument("--vae-steps", type=int, help="override the VAE steps")
    backbone.add_argument("--unet-steps", type=int, help="override the UNet steps")
    backbone.set_defaults(func=run_backbone)
    attention = targets.add_parser(
        "attention", help="train the attention heads on the seen categories of a zero-shot split",
        description="Train the open-vocabulary attention heads on phantoms of the split's seen tumor categories "
        "(the backbone stays frozen). Resumable: run the same command again to continue an interrupted run. "
        "Writes attention_heads.safetensors into --out.")
    defaults = AttentionTrainingConfig()
    attention.add_argument("--split", default=defaults.split, help=f"zero-shot split (default {defaults.split}; "
                           "'diffugts data splits' lists them)")
    attention.add_argument("--out", required=True, metavar="DIR", help="output folder (checkpoints, final heads)")
    attention.add_argument("--backbone", default=defaults.backbone, help="frozen backbone (default demo-ct)")
    attention.add_argument("--weights", metavar="DIR", help="folder with the backbone's weight files")
    attention.add_argument("--text-encoder", default=defaults.text_encoder, help="'minilm' or a local model folder")
    attention.add_argument("--steps", type=positive_int, default=defaults.steps, help=f"default {defaults.steps}")
    attention.add_argument("--cases-per-category", type=positive_int, default=defaults.cases_per_category,
                           help=f"phantoms per seen category (default {defaults.cases_per_category})")
    attention.add_argument("--size", type=positive_int, default=defaults.size, help=f"phantom voxels per axis (default "
                           f"{defaults.size})")
    attention.add_argument("--seed", type=int, default=defaults.seed, help="seed (default 0): same seed, same heads")
    attention.add_argument("--real-data", metavar="PATH", default="",
                           help="real cases besides the phantoms: a manifest CSV, MSD task, KiTS23 or BraTS folder. "
                           "Only cases in the backbone's modality are used: those with a tumor of a seen category, "
                           "and those without a tumor as negatives (cases of unseen categories stay out)")
    attention.set_defaults(func=run_attention)
    refine = targets.add_parser(
        "refine", help="train the refinement head on the seen categories of a zero-shot split",
        description="Train the residual refinement head on the split's seen tumor categories (synthesized tumors in "
        "real scans with --data, phantoms without), with the frozen backbone, the trained attention heads and the "
        "organ priors in the loop. Resumable: run the same command again to continue an interrupted run. Writes "
        "refine_head.safetensors into --out.")
    refine_defaults = RefineTrainingConfig()
    refine.add_argument("--split", default=refine_defaults.split, help=f"zero-shot split (default {refine_defaults.split})")
    refine.add_argument("--out", required=True, metavar="DIR", help="output folder (checkpoints, final head)")
    refine.add_argument("--backbone", default=refine_defaults.backbone, help="frozen backbone (default demo-ct)")
    refine.add_argument("--weights", metavar="DIR", help="folder with the backbone's weight files")
    refine.add_argument("--heads", metavar="FILE", help="attention heads (default: the bundled ones)")
    refine.add_argument("--steps", type=positive_int, default=refine_defaults.steps,
                        help=f"default {refine_defaults.steps}")
    refine.add_argument("--cases-per-category", type=positive_int, default=refine_defaults.cases_per_category,
                        help=f"phantoms per seen category (default {refine_defaults.cases_per_category})")
    refine.add_argument("--healthy-cases", type=int, default=refine_defaults.healthy_cases,
                        help=f"healthy phantoms (default {refine_defaults.healthy_cases})")
    refine.add_argument("--size", type=positive_int, default=refine_defaults.size,
                        help=f"phantom voxels per axis (default {refine_defaults.size})")
    refine.add_argument("--seed", type=int, default=refine_defaults.seed, help="seed (default 0): same seed, same head")
    refine.add_argument("--data", metavar="DIR", default="",
                        help="dataset folder of real scans, e.g. written by 'diffugts data synth --split train': its "
                             "tumors of seen categories and its tumor-free scans are the examples (default: phantoms)")
    refine.add_argument("--exclude-atlas-patient", action="append", default=[], metavar="PATIENT",
                        help="never use this patient's organ atlas for the training scans' priors (their own "
                             "patient: a prior registered from the scan's own anatomy is too good); repeatable")
    refine.set_defaults(func=run_refine)
    calibrate = targets.add_parser(
        "calibrate", help="choose the presence threshold of a refinement head on validation scans",
        description="Run the Segmenter on validation scans as a user would (organ priors from the words): tumors "
        "of the split's seen categories with their own prompt are positives; tumor-free scans, wrong-organ prompts "
        "and pure noise are negatives. The presence threshold with the best balanced accuracy is written into a "
        "copy of the refinement head (--out); below it a finding is reported 'not found' with an empty mask.")
    calibrate.add_argument("--data", required=True, metavar="DIR", help="dataset folder of validation scans (e.g. "
                           "'diffugts data synth --split validation' with another seed than the evaluation's)")
    calibrate.add_argument("--refine", required=True, metavar="FILE", help="refinement head to calibrate")
    calibrate.add_argument("--out", required=True, metavar="FILE", help="calibrated copy of the head (.safetensors)")
    calibrate.add_argument("--split", default=refine_defaults.split, help="zero-shot split whose seen categories are "
                           f"used (default {refine_defaults.split}): unseen ones stay out of calibration")
    calibrate.add_argument("--backbone", default=refine_defaults.backbone, help="frozen backbone (default demo-ct)")
    calibrate.add_argument("--weights", metavar="DIR", help="folder with the backbone's weight files")
    calibrate.add_argument("--heads", metavar="FILE", help="attention heads (default: the bundled ones)")
    calibrate.add_argument("--quality", choices=("fast", "balanced", "best"), default="fast",
                           help="preset the threshold is chosen for (default fast)")
    calibrate.add_argument("--exclude-atlas-patient", action="append", default=[], metavar="PATIENT",
                           help="never use this patient's organ atlas (the scans' own patient); repeatable")
    calibrate.set_defaults(func=run_calibrate)
    parser.set_defaults(func=lambda args: _no_target(parser))


def _no_target(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def backbone_modality(backbone: str) -> str:
    """The modality heads for ``backbone`` train on: T1c (the brain tumor protocol's sequence, which every seen
    MR category has) for a backbone that models MR only (demo-mr), else CT."""
    from ..backbone import get_config

    return "MR-T1c" if [m.lower() for m in get_config(backbone).modalities] == ["mr"] else "CT"


def run_backbone(args: argparse.Namespace) -> int:
    from ..backbone.train import DEFAULT_TRAIN_CONFIG, train_backbone
    from ..progress import for_mode

    config = Path(args.config) if args.config else DEFAULT_TRAIN_CONFIG
    if not config.is_file() and (DEFAULT_TRAIN_CONFIG.parent / config.name).is_file():  # a bundled one by name
        config = DEFAULT_TRAIN_CONFIG.parent / config.name
    if not config.is_file():
        raise DiffuGTSError("training config not found", path=config,
                            hint="Give a file, or a bundled one by name (train_demo_ct_real.json, train_demo_mr.json).")
    if args.data and not Path(args.data).is_dir():
        raise DiffuGTSError("--data folder not found", path=args.data)
    if args.corpus and not (Path(args.corpus) / "corpus.csv").is_file():
        raise DiffuGTSError("--corpus is not a corpus folder (no corpus.csv)", path=args.corpus,
                            hint="Build one with 'diffugts data corpus --out DIR SOURCE...'.")
    overrides = {}
    if args.vae_steps is not None:
        overrides["vae.steps"] = args.vae_steps
    if args.unet_steps is not None:
        overrides["unet.steps"] = args.unet_steps
    train_backbone(config, data_dir=args.data, corpus_dir=args.corpus, out_dir=args.out,
                   time_limit_s=args.time_limit_s, progress=for_mode(args.progress), overrides=overrides)
    return 0


def run_attention(args: argparse.Namespace) -> int:
    from ..attention.train import train_attention
    from ..backbone import build_backbone
    from ..paths import cache_dir
    from ..progress import for_mode
    from ..text import CachedTextEncoder, build_text_encoder

    config = AttentionTrainingConfig(split=args.split, backbone=args.backbone, text_encoder=args.text_encoder,
                                     steps=args.steps, cases_per_category=args.cases_per_category, size=args.size,
                                     seed=args.seed, real_data=args.real_data,
                                     modality=backbone_modality(args.backbone))
    backbone = build_backbone(args.backbone, weights=args.weights)
    text_encoder = CachedTextEncoder(build_text_encoder(args.text_encoder), cache_dir() / "text")
    _, report = train_attention(backbone, text_encoder, config, args.out, progress=for_mode(args.progress))
    print(f"{Path(args.out) / 'attention_heads.safetensors'}: trained on {', '.join(report['categories'])} "
          f"({report['steps']} steps, final loss {report['final_loss']:.3f})")
    return 0


def run_refine(args: argparse.Namespace) -> int:
    from ..progress import for_mode
    from ..segment import Segmenter
    from ..segment.refine import RefineConfig, RefineHead
    from ..segment.train import FINAL_NAME, train_refine

    config = RefineTrainingConfig(split=args.split, backbone=args.backbone, modality=backbone_modality(args.backbone),
                                  steps=args.steps,
                                  cases_per_category=args.cases_per_category, healthy_cases=max(0, args.healthy_cases),
                                  size=args.size, seed=args.seed, data=args.data,
                                  exclude_atlas_patients=list(args.exclude_atlas_patient))
    head = RefineHead(RefineConfig(channels=config.channels, backbone=config.backbone))
    segmenter = Segmenter.from_pretrained(args.backbone, weights=args.weights, heads=args.heads, refine=head)
    _, report = train_refine(segmenter, config, args.out, progress=for_mode(args.progress))
    print(f"{Path(args.out) / FINAL_NAME}: {report['examples']} examples from {', '.join(report['categories'])} "
          f"and tumor-free scans ({report['steps']} steps, final loss {report['final_loss']:.3f}, threshold "
          f"{report['threshold']})")
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    import json

    from ..attention.train import seen_categories, select_real_cases
    from ..data.readers import read_dataset
    from ..progress import for_mode
    from ..segment import Segmenter
    from ..segment.calibrate import calibrate
    from ..io import atomic_output
    from ..segment.checkpoint import load_refine, save_refine
    from ..segment.settings import PRESETS

    out = Path(args.out)
    if out.resolve() == Path(args.refine).resolve():
        raise DiffuGTSError("--out is the head being calibrated", path=out, hint="Write the calibrated copy elsewhere.")
    segmenter = Segmenter.from_pretrained(args.backbone, weights=args.weights, heads=args.heads, refine=args.refine)
    segmenter.exclude_atlas_patients = tuple(args.exclude_atlas_patient)
    config = RefineTrainingConfig(split=args.split, backbone=args.backbone, modality=backbone_modality(args.backbone))
    categories = seen_categories(config, segmenter.backbone, phantoms=False)
    cases = select_real_cases(read_dataset(args.data), categories, config.modality)
    if not cases:
        raise DiffuGTSError(f"no {config.modality} case of a seen category or without a tumor", path=args.data,
                            hint=f"Seen categories of {args.split}: {', '.join(categories)}.")
    threshold, report = calibrate(segmenter, cases, categories, PRESETS[args.quality], config.modality,
                                  for_mode(args.progress))
    _, facts = load_refine(args.refine)
    save_refine(segmenter.refine, out, extra={**facts, "threshold_chosen_for": args.quality,
                                              "calibration": {k: v for k, v in report.items() if k != "rows"}})
    rows = out.with_name(out.name.removesuffix(".safetensors") + "_calibration.json")
    with atomic_output(rows) as temp:
        temp.write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(f"{out}: presence threshold {threshold:.4f} (true-positive rate {report['true_positive_rate']:.2f}, "
          f"false-positive rate {report['false_positive_rate']:.2f} over {report['trials']} trials); details {rows}")
    return 0
