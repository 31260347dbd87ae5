"""Helpers shared by every subcommand: summaries (human + JSON) and exit codes."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Iterator
from typing import Any, TextIO

from cropray.report.table import fmt_table  # noqa: F401  (re-exported: the CLI's summaries use it)

EXIT_OK = 0
EXIT_ATTENTION = 1  # the job ran but something needs attention (rows quarantined, files failed)
EXIT_USAGE = 2  # bad usage or bad input


def add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the final summary as JSON on stdout")


def emit(summary: Any, human: str, as_json: bool, out: TextIO | None = None) -> None:
    """Print the end-of-job summary: JSON (machine) or the human text, to `out` (default stdout).
    `summary`: a typed job result (its `dataclasses.asdict` is the JSON) or a JSON-able dict."""
    out = out or sys.stdout
    if dataclasses.is_dataclass(summary):
        summary = dataclasses.asdict(summary)
    if as_json:
        print(json.dumps(summary, indent=2, sort_keys=True, default=_json_default), file=out)
    else:
        print(human, file=out)
    out.flush()


def _is_fd1(stream: TextIO) -> bool:
    """Does `stream` write where file descriptor 1 points (the process's real stdout)?"""
    try:
        a, b = os.fstat(stream.fileno()), os.fstat(1)
    except (AttributeError, OSError, ValueError):
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


@contextlib.contextmanager
def json_stdout(enabled: bool) -> Iterator[TextIO]:
    """With `--json`, stdout holds the JSON document only, whatever runs inside the block prints.

    Inside the block sys.stdout is sys.stderr (Ray's driver threads print worker errors such as
    "(raylet) Task ... failed" to sys.stdout) and file descriptor 1 points at stderr too (output of
    C++ code and of processes started meanwhile). Yields the stream to give `emit`: the real stdout.
    Without `--json` nothing changes.
    """
    if not enabled:
        yield sys.stdout
        return
    real = sys.stdout
    real.flush()
    saved = None
    if _is_fd1(real):  # a real process stdout: move fd 1, write the JSON to a copy of the old one
        saved = os.dup(1)
        os.dup2(2, 1)
        real = os.fdopen(os.dup(saved), "w", encoding="utf-8")
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield real
    finally:
        real.flush()
        if saved is not None:
            sys.stderr.flush()
            os.dup2(saved, 1)
            os.close(saved)
            real.close()


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def positive_int(flag: str, hi: int | None = None):
    """argparse type for a flag that must be an integer >= 1 (and <= hi, the bound of the config field
    it sets); the error names the flag and the bound."""

    def _parse(v: str) -> int:
        try:
            n = int(v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be an integer, got {v!r}") from None
        if n < 1 or (hi is not None and n > hi):
            bound = f"between 1 and {hi:,}" if hi is not None else ">= 1"
            raise argparse.ArgumentTypeError(f"{flag} must be {bound}, got {n}")
        return n

    return _parse


def non_negative_int(flag: str, hi: int | None = None):
    def _parse(v: str) -> int:
        try:
            n = int(v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be an integer, got {v!r}") from None
        if n < 0 or (hi is not None and n > hi):
            bound = f"between 0 and {hi:,}" if hi is not None else ">= 0"
            raise argparse.ArgumentTypeError(f"{flag} must be {bound}, got {n}")
        return n

    return _parse


# Config fields set by a flag whose name is not the field's (`--` + field, `_` -> `-`), per command.
RENAMED: dict[str, dict[str, str]] = {"tune": {"time_budget_s": "--time-budget"}, "score": {"bundle": "MODEL"}}


def field_flags(parser: argparse.ArgumentParser, command: str) -> dict[str, str]:
    """config field -> the flag (or positional's METAVAR) of `parser` that sets it."""
    flags: dict[str, str] = {}
    for action in parser._actions:  # argparse has no public listing of a parser's arguments
        if action.option_strings:
            long = [o for o in action.option_strings if o.startswith("--")] or action.option_strings
            flags[action.dest] = long[0]
        elif action.dest not in ("help", argparse.SUPPRESS):
            flags[action.dest] = action.metavar or action.dest.upper()
    for field_name, flag in RENAMED.get(command, {}).items():
        flags[field_name] = flag
    return flags


def flag_error(e: Exception, flags: dict[str, str]) -> Exception:
    """The one place library errors meet the command line: a ConfigError naming a config field the
    command sets with a flag is said again with the flag ("--batch-size 99999999 is out of range;
    valid: int in [1, 65,536]"); any other error is returned as it is."""
    from cropray.errors import ConfigError

    field_name = getattr(e, "field", None)
    if not isinstance(e, ConfigError) or field_name not in flags:
        return e
    flag = flags[field_name]
    if e.reason is not None:
        return ConfigError(f"{flag} {e.value} {e.reason}", field=field_name, value=e.value, reason=e.reason)
    return ConfigError(f"{flag}: {e}", field=field_name)


def crop_shape_type(text: str) -> tuple[int, int]:
    """argparse type for `--crop-shape HxW`."""
    from cropray.archive.spec import parse_crop_shape
    from cropray.errors import CroprayError

    try:
        return parse_crop_shape(text)
    except CroprayError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
