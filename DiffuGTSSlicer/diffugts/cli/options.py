"""Options and checks several commands share, so each reads and behaves the same everywhere."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import DiffuGTSError


def add_image_options(parser: argparse.ArgumentParser) -> None:
    """IMAGE, --out DIR, --weights DIR and --modality, as every model-running command takes them."""
    parser.add_argument("image", metavar="IMAGE", help="CT/MR image (NIfTI, NRRD, MHA, DICOM folder)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--weights", metavar="DIR", help="folder with the backbone's weight files (no download)")
    parser.add_argument("--modality", help="override the guessed modality (CT, MR)")


def output_folder(path: str | Path) -> Path:
    """The --out folder, refused when it is an existing file (it is created when results are written)."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise DiffuGTSError("--out must be a folder, and this is a file", path=out,
                            hint="Give a new or existing folder; it is created if needed.")
    return out


def warn(message: str) -> None:
    """Print a warning the way every command does."""
    print(f"diffugts: warning: {message}", file=sys.stderr)
