"""The server token, for `serve` and `segment --server`: from DIFFUGTS_TOKEN or --token-file, never a
command-line value (anyone on the machine can read those with ps)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..client import TOKEN_VARIABLE
from ..errors import DiffuGTSError


def add_token_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token-file", metavar="FILE",
                        help=f"file holding the server token (default: the {TOKEN_VARIABLE} environment variable)")


def read_token(args: argparse.Namespace) -> str | None:
    """The token of --token-file (first line), else $DIFFUGTS_TOKEN, else None."""
    if args.token_file:
        try:
            lines = Path(args.token_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise DiffuGTSError(f"cannot read the token file ({getattr(error, 'strerror', None) or error})",
                                path=args.token_file) from None
        token = lines[0].strip() if lines else ""
        if not token:
            raise DiffuGTSError("the token file is empty", path=args.token_file)
        return token
    return os.environ.get(TOKEN_VARIABLE) or None
