"""`cropray` entry point: a dispatch table of subcommands, one module each.

Each subcommand module exposes `register(subparsers)` (adds its parser, sets `func`) and a
`run(args) -> int` returning the exit status: 0 success, 1 ran but needs attention, 2 bad usage/input.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from cropray import __version__
from cropray.cli._common import field_flags, flag_error
from cropray.errors import CroprayError

# name -> module under cropray.cli; order is the order shown in --help.
SUBCOMMANDS = ["synth", "inspect", "train", "eval", "score", "tune", "suggest", "label", "demo", "bench"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own usage errors exit 2 too; keep it, name the command
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cropray",
        description="Train, tune and batch-score classifiers of 64x64 spectrogram crops on Ray.",
        epilog="Run `cropray <command> --help` for each command's options and an example.",
    )
    parser.add_argument("--version", action="version", version=f"cropray {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in SUBCOMMANDS:
        importlib.import_module(f"cropray.cli.{name}").register(sub)
        p = sub.choices[name]
        p.set_defaults(field_flags=field_flags(p, name))  # config field -> flag, for error messages
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except CroprayError as e:
        e = flag_error(e, args.field_flags)  # a config field's error names the flag that sets it
        print(f"cropray {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"cropray {args.command}: interrupted", file=sys.stderr)
        return 130
