"""``diffugts info FILE...``: geometry, intensities, modality guess and memory estimate of images."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from ..errors import DiffuGTSError

if TYPE_CHECKING:
    from ..io import Volume


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="describe images: geometry, intensities, modality, memory",
                                   description="Describe images (NIfTI, NRRD, MHA/MHD or DICOM series folders).")
    parser.add_argument("paths", nargs="+", metavar="FILE", help="image file or DICOM series folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object per image")
    parser.set_defaults(func=run)


def describe(volume: Volume) -> dict[str, Any]:
    """The facts ``info`` prints, as plain JSON-ready values."""
    from ..backbone.registry import get_config
    from ..io import orientation_code
    from ..memory import budget_bytes
    from ..segment.memory import segmentation_bytes

    array = volume.array
    return {
        "path": volume.source,
        "size": list(volume.size),
        "spacing": list(volume.spacing),
        "origin": list(volume.origin),
        "direction": volume.direction.tolist(),
        "orientation": orientation_code(volume.direction),
        "dtype": str(array.dtype),
        "intensity": {"min": float(array.min()), "max": float(array.max()), "mean": float(array.mean())},
        "modality": volume.modality,
        "modality_reason": volume.metadata.get("modality_reason", ""),
        "source_ndim": volume.source_ndim,
        "memory": {
            "array_bytes": int(array.nbytes),
            "pipeline_bytes": segmentation_bytes(volume, get_config("demo-ct"), prompts=1, seeds=1),
            "budget_bytes": budget_bytes(),
        },
        "warnings": list(volume.warnings),
    }


def _text(facts: dict[str, Any]) -> str:
    from ..memory import format_bytes

    fmt = lambda values: " x ".join(f"{v:g}" for v in values)  # noqa: E731
    rows = "\n".join(f"               [{' '.join(f'{v:+.6f}' for v in row)}]" for row in facts["direction"])
    intensity, memory = facts["intensity"], facts["memory"]
    two_d = " (2D image, read as one slice)" if facts["source_ndim"] == 2 else ""
    return "\n".join([
        facts["path"],
        f"  size         {fmt(facts['size'])} voxels (i, j, k){two_d}",
        f"  spacing      {fmt(facts['spacing'])} mm",
        f"  origin       {' '.join(f'{v:.6g}' for v in facts['origin'])} mm (LPS)",
        f"  orientation  {facts['orientation']}",
        "  direction    columns are the i, j, k axes in LPS",
        rows,
        f"  data type    {facts['dtype']}",
        f"  intensity    {intensity['min']:g} .. {intensity['max']:g} (mean {intensity['mean']:.4g})",
        f"  modality     {facts['modality']} (guessed from {facts['modality_reason']})",
        f"  memory       {format_bytes(memory['array_bytes'])} as read; the pipeline needs about "
        f"{format_bytes(memory['pipeline_bytes'])} with the demo model, one prompt, Fast (budget "
        f"{format_bytes(memory['budget_bytes'])})",
        *[f"  warning      {w}" for w in facts["warnings"]],
    ])


def run(args: argparse.Namespace) -> int:
    from ..io import read_volume
    from .options import warn

    failures = 0
    for path in args.paths:
        try:
            facts = describe(read_volume(path))
        except DiffuGTSError as error:
            if args.debug or len(args.paths) == 1:
                raise
            warn(str(error))
            failures += 1
            continue
        print(json.dumps(facts) if args.json else _text(facts), flush=True)
    if failures:
        raise DiffuGTSError(f"{failures} of {len(args.paths)} images could not be read (see above)")
    return 0
