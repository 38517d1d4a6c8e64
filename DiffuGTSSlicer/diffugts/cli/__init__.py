"""The ``diffugts`` command line: one subcommand per module, errors as one clear line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..allocator import prefer_huge_pages
from ..errors import DiffuGTSError
from ..progress import MODES
from . import attention, batch, data, evaluate, info, inpaint, organs, segment, serve, train, weights

# Each module has register(subparsers), which adds its subcommand(s) with a `func` default.
COMMAND_MODULES = [info, data, weights, inpaint, attention, segment, batch, serve, train, evaluate, organs]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diffugts",
        description="Zero-shot, text-prompted tumor segmentation in CT and MRI (DiffuGTS). "
        "Research software, not for clinical use.",
    )
    parser.add_argument("--version", action="version", version=f"diffugts {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    parser.add_argument("--progress", choices=MODES, default="bar",
                        help="progress display: a bar (default), JSON lines for programs, or none")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    _accept_progress_after_commands(parser)
    return parser


def _accept_progress_after_commands(parser: argparse.ArgumentParser) -> None:
    """--progress also after a (sub)command's name, where people put options; when given there, it wins."""
    for action in parser._actions:
        for command in action.choices.values() if isinstance(action, argparse._SubParsersAction) else ():
            command.add_argument("--progress", choices=MODES, default=argparse.SUPPRESS,
                                 help="progress display: bar (default), JSON lines for programs, or none")
            _accept_progress_after_commands(command)


def main(argv: Sequence[str] | None = None) -> int:
    prefer_huge_pages()  # the engine's own process: before torch allocates anything
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except DiffuGTSError as error:
        if args.debug:
            raise
        print(f"diffugts: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("diffugts: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the last line of defence against traceback walls
        if args.debug:
            raise
        print(
            f"diffugts: internal error: {type(error).__name__}: {error}. "
            "Re-run with --debug for the traceback, and please report it.",
            file=sys.stderr,
        )
        return 1
