"""``diffugts batch --input DIR|CSV --prompt TEXT --out DIR``: many volumes, resumable, one folder per case."""

from __future__ import annotations

import argparse
import os

from ..errors import DiffuGTSError
from .options import output_folder, positive_int, warn
from .segment import add_model_options, add_request_options, model_spec, request_from


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "batch", help="segment a folder or CSV of volumes, resumably",
        description="Segment every image of a folder (recursively; NIfTI, NRRD, MHA, DICOM series folders) or every "
        "row of a CSV (columns: image, and optionally case_id, organ_mask, modality; paths relative to the CSV). "
        "Each case gets OUT/<case_id>/ with its label map, .seg.nrrd and report.json (--outputs all: every file "
        "'diffugts segment' writes), moved into place only when complete. Run the same command again to resume: "
        "finished cases are skipped. A case that fails is recorded "
        "in OUT/summary.csv and the batch goes on. Exit status 0: every case finished; 3: some failed.")
    parser.add_argument("--input", required=True, metavar="DIR|CSV", help="folder of images, or a CSV of cases")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (one sub-folder per case)")
    parser.add_argument("--weights", metavar="DIR", help="folder with the backbone's weight files (no download)")
    parser.add_argument("--modality", help="modality of every case, unless its CSV row says (CT, MR, MR-T1c, "
                        "MR-FLAIR, ...)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto (default): every visible CUDA GPU, one worker process each; else the CPU")
    parser.add_argument("--workers", type=positive_int, default=1,
                        help="CPU worker processes (default 1); each gets its share of the CPU threads")
    parser.add_argument("--ray", metavar="ADDRESS", nargs="?", const="local",
                        help="run on a Ray cluster: 'auto' joins the running one, 'ray://HOST:10001' a remote one, "
                             "no value starts one on this machine (needs pip install \"diffugts[ray]\"; --out must be "
                             "on storage every node sees)")
    add_request_options(parser)
    add_model_options(parser)
    parser.set_defaults(func=run)


def devices_for(device: str, workers: int) -> list[str]:
    """One entry per local worker: each visible GPU once (device auto/cuda), else 'cpu' ``workers`` times."""
    from .options import torch_device

    if torch_device(device) == "cuda":
        import torch

        return [f"cuda:{n}" for n in range(torch.cuda.device_count())]
    return ["cpu"] * workers


def run(args: argparse.Namespace) -> int:
    from ..batch import list_cases, run_batch
    from ..progress import for_mode

    out = output_folder(args.out)
    request = request_from(args)
    cases = list_cases(args.input, exclude=out)
    spec = model_spec(args, device=args.device)  # resolved per worker: each visible GPU, or a Ray actor's
    devices = [] if args.ray else devices_for(args.device, args.workers)
    if devices and devices[0].startswith("cuda") and args.workers > 1:
        raise DiffuGTSError("--workers is for CPU runs; with GPUs there is one worker per visible GPU",
                            hint="Choose GPUs with CUDA_VISIBLE_DEVICES, or use --device cpu --workers N.")
    threads = args.threads or (max(1, (os.cpu_count() or 1) // len(devices)) if devices else None)

    def report(outcome) -> None:
        if outcome.status == "failed":
            warn(f"case {outcome.case.case_id} failed: {outcome.error}")

    totals = run_batch(cases, request, out, spec, devices=devices, threads=threads, ray_address=args.ray,
                       ray_workers=args.workers if args.workers > 1 else None, progress=for_mode(args.progress),
                       on_outcome=report)
    print(f"{len(cases)} case(s): {totals.done} done now, {totals.earlier} done earlier, {totals.failed} failed; "
          f"summary: {out / 'summary.csv'}")
    return 3 if totals.failed else 0
