"""``diffugts segment IMAGE --prompt "kidney tumor" --out DIR``: the whole method, written on the input's grid."""

from __future__ import annotations

import argparse

from ..errors import DiffuGTSError
from ..segment.settings import PRESETS
from .options import add_image_options, output_folder, positive_int, torch_device, warn


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "segment", help="segment tumors from text prompts",
        description="Segment what each prompt describes: attention maps from the frozen diffusion backbone, a "
        "pseudo-healthy scan by latent inpainting, residual refinement. Writes a label map, a .seg.nrrd (one "
        "segment per prompt), probability and attention maps, the pseudo-healthy scan, an uncertainty map, "
        "report.json and quicklook.png, all on the input's exact grid. Research software, not for clinical use.")
    add_image_options(parser)
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
    parser.add_argument("--organ-mask", metavar="FILE",
                        help="organ mask on the image grid (nonzero = organ, e.g. from TotalSegmentator): findings "
                             "are kept inside it")
    parser.add_argument("--min-component", type=float, default=None, metavar="MM3",
                        help="drop connected components smaller than this many mm³ (default 50)")
    parser.add_argument("--threads", type=positive_int, help="CPU threads for the networks (default: torch's choice)")
    parser.add_argument("--backbone", default="demo-ct", help="backbone name or config .json (default demo-ct)")
    parser.add_argument("--heads", metavar="FILE", help="attention heads (default: the bundled ones)")
    parser.add_argument("--refine", metavar="FILE", help="refinement head (default: the bundled one)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    import torch

    from ..io import read_volume
    from ..io.crop import Box
    from ..progress import for_mode
    from ..segment import Segmenter
    from ..segment.write import output_names, write_result

    if args.threads:
        torch.set_num_threads(args.threads)
    out = output_folder(args.out, output_names(len(args.prompt)))
    image = read_volume(args.image)
    roi = Box.parse(args.roi).fit(image.size) if args.roi else None  # checked before the models load
    for message in image.warnings:
        warn(message)
    organ = read_volume(args.organ_mask) if args.organ_mask else None
    settings = PRESETS[args.quality].with_seed(args.seed)
    if args.min_component is not None:
        if args.min_component < 0:
            raise DiffuGTSError(f"--min-component must be 0 or more mm³, not {args.min_component}")
        settings = dataclasses.replace(settings, min_component_mm3=args.min_component)
    segmenter = Segmenter.from_pretrained(args.backbone, weights=args.weights, heads=args.heads, refine=args.refine,
                                          device=torch_device(args.device))
    progress = for_mode(args.progress)
    result = segmenter(image, args.prompt, settings=settings, organ_mask=organ, modality=args.modality, roi=roi,
                       progress=progress)
    for message in result.warnings:
        if message not in image.warnings:
            warn(message)
    written = write_result(result, image, out, image_path=args.image)
    for finding in result.findings:
        print(f"{finding.text!r}: presence {finding.presence:.2f}, {finding.volume_ml:.2f} mL in "
              f"{finding.components} component(s)")
    print(f"wrote {len(written)} files to {out} in {result.timings['total']:.1f} s (see report.json)")
    return 0
