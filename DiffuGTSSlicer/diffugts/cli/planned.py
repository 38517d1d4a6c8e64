"""Commands that later versions provide: listed in --help, and honest that they are not here yet."""

from __future__ import annotations

import argparse

from ..errors import DiffuGTSError

# name -> what it will do; removed from here as each command lands
PLANNED: dict[str, str] = {}


def register(subparsers: argparse._SubParsersAction) -> None:
    for name, summary in PLANNED.items():
        parser = subparsers.add_parser(name, help=f"{summary} (not available yet)", add_help=False,
                                       prefix_chars="\0")  # every argument, --help included, goes to REMAINDER
        parser.add_argument("rest", nargs=argparse.REMAINDER)
        parser.set_defaults(func=_not_available, command_name=name)


def _not_available(args: argparse.Namespace) -> int:
    raise DiffuGTSError(
        f"'diffugts {args.command_name}' is not available yet in this version",
        hint="It is planned; 'diffugts --help' lists what works now.",
    )
