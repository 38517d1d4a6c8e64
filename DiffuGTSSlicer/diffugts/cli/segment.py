"""``diffugts segment IMAGE --prompt "kidney tumor" --out DIR``: the whole method, written on the input's grid."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import DiffuGTSError
from ..segment.outputs import DEFAULTS, KINDS
from ..segment.job import DICOM_SEG_MODES
from ..segment.settings import PRESETS
from .options import add_image_options, output_folder, positive_int, torch_device, warn
from .server_token import add_token_option, read_token


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "segment", help="segment tumors from text prompts",
        description="Segment what each prompt describes: attention maps from the frozen diffusion backbone, a "
        "pseudo-healthy scan by latent inpainting, residual refinement. Writes a label map, a .seg.nrrd (one "
        "segment per prompt), probability and attention maps, the pseudo-healthy scan, an uncertainty map, "
        "report.json and quicklook.png, all on the input's exact grid. Research software, not for clinical use.")
    add_image_options(parser)
    add_request_options(parser)
    add_click_options(parser)
    parser.add_argument("--organ-mask", metavar="FILE",
                        help="organ mask on the image grid (nonzero = organ, e.g. from TotalSegmentator): findings "
                             "are kept inside it")
    add_model_options(parser)
    parser.add_argument("--server", metavar="URL",
                        help="run on a warm 'diffugts serve' at URL (e.g. http://127.0.0.1:8765) instead of here: "
                             "same outputs; the server's models and device are used. Token: DIFFUGTS_TOKEN or "
                             "--token-file")
    add_token_option(parser)
    parser.set_defaults(func=run)


def add_request_options(parser: argparse.ArgumentParser) -> None:
    """--prompt, --quality/--fast, --seed, --roi, --min-component, --outputs: what `segment` and `batch` share."""
    parser.add_argument("--prompt", action="append", required=True, metavar="TEXT",
                        help='what to find, e.g. "kidney tumor"; repeat for several findings')
    parser.add_argument("--quality", choices=tuple(PRESETS), default="balanced",
                        help="fast: 1 sample, 5 steps; balanced (default): 3 samples, 10 steps; best: 5 samples, "
                             "20 steps. More samples give a better-founded uncertainty map.")
    parser.add_argument("--fast", action="store_const", const="fast", dest="quality", help="same as --quality fast")
    parser.add_argument("--seed", type=int, default=0, help="first inpainting seed (default 0): same seed, same result")
    parser.add_argument("--roi", metavar="I0:I1,J0:J1,K0:K1",
                        help="work only inside this box of voxel indices (stop excluded; empty = edge); outputs "
                             "still cover the whole image. Use it for large volumes.")
    parser.add_argument("--min-component", type=float, default=None, metavar="MM3",
                        help="drop connected components smaller than this many mm³ (default 50)")
    parser.add_argument("--dicom-seg", choices=DICOM_SEG_MODES, default=None,
                        help="for a DICOM folder input, also write segmentation.dcm, a DICOM SEG that references "
                             "the series: binary (the default: the label map), fractional (each prompt's "
                             "probability) or none")
    parser.add_argument("--outputs", metavar="KIND[,KIND...]",
                        help=f"the files to write besides report.json: {', '.join(KINDS)}, or all (default: all for "
                             f"segment, {','.join(DEFAULTS['batch'])} for batch)")


def add_click_options(parser: argparse.ArgumentParser) -> None:
    """--point, --negative-point, --box, --lps: clicks that correct a prompt's result."""
    where = "[PROMPT@]R,A,S"
    parser.add_argument("--point", action="append", default=[], metavar=where,
                        help="a positive click (patient mm, RAS as Slicer shows them; --lps for LPS): raises the "
                             "finding there and keeps what it touches. With several prompts, name the prompt it "
                             "corrects: --point 'kidney tumor@12.5,-40,30'. Repeat for more")
    parser.add_argument("--negative-point", action="append", default=[], metavar=where,
                        help="a negative click: removes what it touches and lowers the maps around it")
    parser.add_argument("--box", action="append", default=[], metavar="[PROMPT@]R0,A0,S0,R1,A1,S1",
                        help="two opposite corners (mm) of a box the prompt's finding must lie in (one per prompt)")
    parser.add_argument("--lps", action="store_true",
                        help="read --point, --negative-point and --box as LPS (DICOM's patient coordinates)")


def clicks_from(args: argparse.Namespace) -> dict:
    """The request's points, boxes and coordinates from the click options (none for a command without them)."""
    if not hasattr(args, "point"):
        return {}
    points = [{**_click(text, 3, "--point"), "positive": True} for text in args.point]
    points += [{**_click(text, 3, "--negative-point"), "positive": False} for text in args.negative_point]
    boxes = []
    for text in args.box:
        click = _click(text, 6, "--box")
        boxes.append({**click, "min": click["position"][:3], "max": click.pop("position")[3:]})
    return {"points": points, "boxes": boxes, "coordinates": "LPS" if args.lps else "RAS"}


def _click(text: str, count: int, option: str) -> dict:
    """'[PROMPT@]x,y,z...' as {"prompt": ..., "position": [numbers]} (no "prompt" when none is named)."""
    prompt, at, numbers = text.rpartition("@")
    try:
        values = [float(v) for v in numbers.split(",")]
    except ValueError:
        values = []
    if len(values) != count:
        example = "kidney tumor@12.5,-40,30" if count == 3 else "kidney tumor@0,-60,10,40,-20,50"
        raise DiffuGTSError(f"{option} {text!r} is not {'' if count == 3 else 'two corners of '}{count} "
                            "comma-separated numbers (mm), optionally after the prompt's text and '@'",
                            hint=f"e.g. {option} '{example}' (RAS; add --lps for LPS coordinates).")
    return {"prompt": prompt.strip(), "position": values} if at else {"position": values}


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """--threads, --backbone, --heads, --refine (with add_image_options' --weights and --device)."""
    parser.add_argument("--threads", type=positive_int, help="CPU threads for the networks (default: torch's choice)")
    parser.add_argument("--backbone", default="auto",
                        help="backbone name or config .json (default auto: demo-ct for CT images, demo-mr for MR, "
                             "from the modality; see --modality)")
    parser.add_argument("--heads", metavar="FILE", help="attention heads (default: the bundled ones)")
    parser.add_argument("--refine", metavar="FILE", help="refinement head (default: the bundled one)")


def request_from(args: argparse.Namespace, modality: str | None = None):
    """The SegmentRequest the command-line options describe (checked: a bad value is a one-line error)."""
    from ..segment.job import SegmentRequest

    return SegmentRequest(tuple(args.prompt), quality=args.quality, seed=args.seed, roi=args.roi,
                          min_component_mm3=args.min_component, modality=modality or args.modality,
                          outputs=args.outputs, dicom_seg=args.dicom_seg, **clicks_from(args))


def model_spec(args: argparse.Namespace, device: str | None = None):
    """The models the options name (--backbone, --weights, --heads, --refine), on ``device`` (default --device)."""
    from ..segment.job import ModelSpec

    return ModelSpec(args.backbone, args.weights, args.heads, args.refine, device or torch_device(args.device))


def load_segmenter(args: argparse.Namespace):
    """The Segmenter the model options name (for --backbone auto, one per modality, loaded on first use and said
    on stderr), with --threads applied."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    return model_spec(args).load(on_choice=warn_choice)


def warn_choice(message: str) -> None:
    """The automatic model choice, said on stderr."""
    import sys

    print(f"diffugts: {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    if args.server:
        return run_on_server(args)
    from ..progress import for_mode
    from ..segment import job
    from ..segment.model_choice import AUTO, check_reads
    from ..segment.outputs import output_names

    request = request_from(args)
    out = output_folder(args.out, output_names(len(args.prompt), outputs=request.outputs_or("segment")))
    prepared = job.prepare(args.image, request, args.organ_mask)  # checked before the models load
    for message in prepared.image.warnings:
        warn(message)
    if args.backbone != AUTO:  # a backbone that cannot read the image is refused before it loads
        check_reads(args.backbone, prepared.modality, prepared.image)
    segmenter = load_segmenter(args)
    if hasattr(segmenter, "segmenter_for"):  # --backbone auto: the modality's models, refused before any work
        segmenter.segmenter_for(prepared.modality)
    result, written = job.run(segmenter, prepared, out, progress=for_mode(args.progress))
    for message in result.warnings:
        if message not in prepared.image.warnings:
            warn(message)
    summarize(written["report"], len(written))
    return 0


def summarize(report_path: Path, files: int, where: str = "") -> None:
    """What a run found, prompt by prompt, and where it wrote, from its report.json."""
    report = json.loads(report_path.read_text(encoding="utf-8"))
    for entry in report["prompts"]:
        if not entry.get("found", True):
            print(f"{entry['prompt']!r}: not found (presence {entry['presence']:.2f}, below the reporting threshold)")
            continue
        print(f"{entry['prompt']!r}: presence {entry['presence']:.2f}, {entry['volume_ml']:.2f} mL in "
              f"{entry['components']} component(s)")
    print(f"wrote {files} files to {report_path.parent} in {report['timings_s']['total']:.1f} s{where} "
          "(see report.json)")


def run_on_server(args: argparse.Namespace) -> int:
    """The same job on a `diffugts serve`: upload, segment there, download every output into --out."""
    import signal

    from ..client import Client
    from ..client import segment as segment_on
    from ..progress import for_mode
    from ..segment.outputs import output_names

    if args.weights or args.heads or args.refine or args.backbone != "auto":
        raise DiffuGTSError("--backbone, --weights, --heads and --refine choose local models; with --server the "
                            "server's models are used", hint="Drop them, or start the server with them.")
    request = request_from(args)
    out = output_folder(args.out, output_names(len(args.prompt), outputs=request.outputs_or("segment")))
    client = Client(args.server, read_token(args))
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a terminated run (Slicer's Cancel) cancels the job too
    try:
        _, written = segment_on(client, args.image, request.to_json(), out, organ_mask=args.organ_mask,
                                progress=for_mode(args.progress))
    finally:
        signal.signal(signal.SIGTERM, previous)
    for message in json.loads(written["report.json"].read_text(encoding="utf-8"))["warnings"]:
        warn(message)
    summarize(written["report.json"], len(written), where=f" on {client.url}")
    return 0


def _interrupt(signum: int, frame) -> None:
    raise KeyboardInterrupt
