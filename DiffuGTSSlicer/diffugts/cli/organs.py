"""``diffugts organs IMAGE --organ NAME --out DIR``: organ priors (probability maps) on the input's exact grid."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import DiffuGTSError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "organs", help="organ priors: where the organ a prompt names lies, on the image's grid",
        description="Write, for each --organ, <organ>_prior.nii.gz (probability 0-1, float32), <organ>_mask.nii.gz "
        "(uint8, probability >= 0.5) and report.json (per organ: method, note, seconds, volume_ml). CT: body, "
        "lung, left/right lung, bone by rule; liver, kidney, spleen, pancreas, colon, stomach, urinary bladder "
        "and other labelled organs by atlas registration. MR: head, body, brain (a skull-stripped scan's "
        "foreground, else template registration). Other organs get the body, and the report says so.")
    parser.add_argument("image", metavar="IMAGE", help="CT/MR image (NIfTI, NRRD, MHA, DICOM folder)")
    parser.add_argument("--organ", action="append", required=True, metavar="NAME",
                        help="organ name or prompt ('liver', 'mass in the pancreatic head'); may be repeated")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--modality", choices=("CT", "MR"), help="override the guessed modality")
    parser.add_argument("--organ-mask", metavar="FILE",
                        help="your own organ mask (nonzero = organ, on the image's grid): it replaces the prior")
    parser.set_defaults(func=run)


def file_stem(organ: str) -> str:
    """'urinary bladder' -> 'urinary_bladder' (the file names' organ part)."""
    return "_".join(organ.split()) or "organ"


def run(args: argparse.Namespace) -> int:
    from ..io import atomic_output, read_volume, write_volume
    from ..organs import organ_for, organ_priors, user_prior
    from ..progress import for_mode
    from .options import output_folder

    progress = for_mode(args.progress)
    asked = {organ_for(text): text for text in reversed(args.organ)}  # each organ once, as first asked
    organs = list(reversed(asked))
    if args.organ_mask and len(organs) > 1:
        raise DiffuGTSError("--organ-mask is one organ's mask, and several organs were asked for",
                            hint="Give one --organ with --organ-mask.")
    names = [f"{file_stem(o)}_{kind}.nii.gz" for o in organs for kind in ("prior", "mask")] + ["report.json"]
    out = output_folder(args.out, names)
    progress("reading", 0.0)
    image = read_volume(args.image)
    if args.modality:
        image.modality = args.modality
    progress("reading", 1.0)
    progress("organ priors", 0.0)
    if args.organ_mask:
        priors = [user_prior(image, organs[0], read_volume(args.organ_mask))]
    else:
        priors = organ_priors(image, organs)
    progress("organ priors", 1.0)
    rows = []
    for prior in priors:
        mask = prior.mask()
        stem = file_stem(prior.organ)
        write_volume(prior.probability, out / f"{stem}_prior.nii.gz")
        write_volume(mask, out / f"{stem}_mask.nii.gz")
        rows.append({"organ": prior.organ, "asked": asked[prior.organ], "method": prior.method, "note": prior.note,
                     "seconds": round(prior.seconds, 3),
                     "volume_ml": round(float(mask.array.sum()) * image.voxel_volume_ml, 2),
                     "prior": f"{stem}_prior.nii.gz", "mask": f"{stem}_mask.nii.gz"})
        print(f"{prior.organ}: {prior.method}, {rows[-1]['volume_ml']:g} mL" + (f" ({prior.note})" if prior.note else ""))
    report = {"image": str(Path(args.image)), "modality": image.modality, "organs": rows}
    with atomic_output(out / "report.json") as temp:
        temp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0
