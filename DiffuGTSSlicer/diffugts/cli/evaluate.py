"""``diffugts evaluate DATASET --out DIR``: Dice, NSD, HD95 and presence AUROC of each method, resumably."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import DiffuGTSError
from .options import add_weights_device_options, output_folder, positive_int, torch_device

QUALITIES = ("fast", "balanced", "best")
OUTPUT_NAMES = ("cases.csv", "summary.csv", "summary.md", "evaluation.json")
# diffugts.evaluation.predictors.METHODS, spelled out so that --help does not import torch
METHODS = ("diffugts", "attention-only", "intensity-outlier")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="score segmentations against expert masks",
        description="Run each method on every case of a dataset (a manifest.csv, an MSD task, KiTS23 or BraTS "
        "folder) or of a phantom zero-shot split, and score it: Dice, NSD at 2 mm and HD95 per case "
        "(cases.csv), mean ± SD per category and presence AUROC over cases with and without tumor "
        "(summary.csv, summary.md). Methods: the full Segmenter, its attention map alone, and an "
        "intensity-outlier baseline inside the organ. A rerun with the same --out skips the cases already "
        "scored. Research software, not for clinical use.")
    parser.add_argument("dataset", nargs="?", metavar="DATASET", help="manifest.csv or dataset folder")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (a rerun into it resumes)")
    parser.add_argument("--layout", choices=("manifest", "msd", "kits23", "brats"),
                        help="dataset layout (default: detected)")
    parser.add_argument("--quality", choices=QUALITIES, default="balanced", help="Segmenter preset (default balanced)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), metavar="METHOD",
                        help=f"methods to compare (default all: {', '.join(METHODS)})")
    parser.add_argument("--limit", type=positive_int, metavar="N", help="only the first N cases")
    add_weights_device_options(parser)
    parser.add_argument("--backbone", default="demo-ct",
                        help="backbone of the Segmenter methods (default demo-ct; demo-mr, or a config .json, with "
                        "its --weights): cases of a modality it does not model are skipped by them")
    parser.add_argument("--phantom-split", metavar="SPLIT",
                        help="instead of DATASET: phantoms of a zero-shot split's seen and unseen categories "
                        "(CT) plus healthy negatives, written to OUT/phantoms (reused when there)")
    parser.add_argument("--split", metavar="SPLIT",
                        help="label a DATASET's cases seen or unseen by this zero-shot split (diffugts data splits), "
                        "so the summary has seen and unseen rows")
    parser.add_argument("--n", type=positive_int, default=4, help="phantoms per category (default 4)")
    parser.add_argument("--size", type=positive_int, default=64, help="phantom size in voxels (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="phantom set seed (default 0)")
    parser.add_argument("--heads", metavar="FILE", help="attention heads to evaluate (default: the bundled ones)")
    parser.add_argument("--refine", metavar="FILE", help="refinement head to evaluate (default: the bundled one), "
                        "e.g. one from 'diffugts train refine' or 'train calibrate'")
    parser.add_argument("--exclude-atlas-patient", action="append", default=[], metavar="PATIENT",
                        help="never use this patient's organ atlas (the cases' own patient); repeatable")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..data.readers import detect_layout, read_dataset
    from ..data.splits import zero_shot_split
    from ..evaluation.predictors import INTENSITY_OUTLIER, SEGMENTER_METHODS, OutlierPredictor, SegmenterPredictor
    from ..evaluation.run import RunSettings, check_run_folder, evaluate, with_file_hashes
    from ..evaluation.zero_shot import PHANTOM_FOLDER, phantom_set
    from ..progress import for_mode

    if (args.dataset is None) == (args.phantom_split is None):
        raise DiffuGTSError("give either a DATASET or --phantom-split SPLIT",
                            hint="For example: diffugts evaluate data/manifest.csv --out results.")
    if args.split and args.phantom_split:
        raise DiffuGTSError("--split labels a DATASET; --phantom-split already names the split of its phantoms")
    progress = for_mode(args.progress)
    out = output_folder(args.out, OUTPUT_NAMES)
    split_name = args.phantom_split or args.split
    split = zero_shot_split(split_name) if split_name else None
    dataset = out / PHANTOM_FOLDER / "manifest.csv" if args.phantom_split else Path(args.dataset)
    if not args.phantom_split:
        layout = args.layout or detect_layout(dataset)
        cases = read_dataset(dataset, layout)  # bad paths and layouts fail here, before any model loads
    else:
        layout = "manifest"
    predictors, models = [], {}
    segmenter_methods = tuple(m for m in args.methods if m in SEGMENTER_METHODS)
    if segmenter_methods:
        from ..segment import PRESETS, Segmenter

        segmenter = Segmenter.from_pretrained(args.backbone, weights=args.weights, heads=args.heads,
                                              refine=args.refine, device=torch_device(args.device))
        segmenter.exclude_atlas_patients = tuple(args.exclude_atlas_patient)
        predictors.append(SegmenterPredictor(segmenter, PRESETS[args.quality], segmenter_methods))
        models = with_file_hashes(segmenter.models)
        models["excluded_atlas_patients"] = list(segmenter.exclude_atlas_patients)
    if INTENSITY_OUTLIER in args.methods:
        predictors.append(OutlierPredictor())
    settings = RunSettings(
        dataset=str(dataset.resolve()), layout=layout,
        methods=tuple(m for predictor in predictors for m in predictor.methods),
        quality=args.quality if segmenter_methods else None, models=models, phantom_split=args.phantom_split,
        split=args.split,
        phantoms={"n": args.n, "size": args.size, "seed": args.seed} if args.phantom_split else {})
    check_run_folder(out, settings)  # a folder of another run is refused before phantoms are written
    if args.phantom_split:
        cases = read_dataset(phantom_set(split, out, args.n, args.size, args.seed, progress), layout)
    outcome = evaluate(cases[: args.limit], predictors, out, settings, split=split, progress=progress)
    print((out / "summary.md").read_text(encoding="utf-8"))
    print(f"{outcome.evaluated} cases evaluated now, {outcome.reused} already in {out / 'cases.csv'}; "
          f"summary in {out / 'summary.csv'} and {out / 'summary.md'}")
    return 0
