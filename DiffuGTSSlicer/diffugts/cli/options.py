"""Options and checks several commands share, so each reads and behaves the same everywhere."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import DiffuGTSError


def add_image_options(parser: argparse.ArgumentParser) -> None:
    """IMAGE, --out, --weights, --modality and --device, as every model-running command takes them."""
    parser.add_argument("image", metavar="IMAGE", help="CT/MR image (NIfTI, NRRD, MHA, DICOM folder)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--modality", help="the image's modality, instead of the guess: CT, MR, or an MR sequence "
                                           "(MR-T1, MR-T1c, MR-T2, MR-FLAIR, MR-PD, MR-DWI, MR-ADC; 't1c' and 'flair' "
                                           "work too)")
    add_weights_device_options(parser)


def add_weights_device_options(parser: argparse.ArgumentParser) -> None:
    """--weights and --device: where the backbone's files are and where the networks run."""
    parser.add_argument("--weights", metavar="DIR", help="folder with the backbone's weight files (no download)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where the networks run (default auto: a CUDA GPU when there is one)")


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def torch_device(name: str) -> str:
    """'auto' -> 'cuda' when a CUDA GPU is usable, else 'cpu'; 'cuda' without one is a clear error."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise DiffuGTSError("--device cuda asked for, but no CUDA GPU is available", hint="Use --device cpu or auto.")
    return name


def output_folder(path: str | Path, names: list[str] | tuple[str, ...] = ()) -> Path:
    """The --out folder, checked before any work without creating it: it could be created and written to,
    and none of ``names`` in it is an input file. It is made when the first result is written."""
    from ..io.safe_write import is_input

    out = Path(path)
    if out.exists() and not out.is_dir():
        raise DiffuGTSError("--out must be a folder, and this is a file", path=out,
                            hint="Give a new or existing folder; it is created if needed.")
    existing = next(p for p in (out.absolute(), *out.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise DiffuGTSError(f"cannot create the output folder: {existing} is a file", path=out,
                            hint="Choose a folder you can write to.")
    if not os.access(existing, os.W_OK):
        raise DiffuGTSError(f"cannot create the output folder: {existing} is not writable", path=out,
                            hint="Choose a folder you can write to.")
    for name in names:
        if is_input(out / name):
            raise DiffuGTSError(f"an output would overwrite the input {name}", path=out / name,
                                hint="Choose another --out folder; inputs are never modified.")
    return out


def warn(message: str) -> None:
    """Print a warning the way every command does."""
    print(f"diffugts: warning: {message}", file=sys.stderr)
