"""Helpers shared by every subcommand: summaries (human + JSON) and exit codes."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_OK = 0
EXIT_ATTENTION = 1  # the job ran but something needs attention (rows quarantined, files failed)
EXIT_USAGE = 2  # bad usage or bad input


def add_json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the final summary as JSON on stdout")


def emit(summary: dict[str, Any], human: str, as_json: bool) -> None:
    """Print the end-of-job summary: JSON (machine) or the human text."""
    if as_json:
        print(json.dumps(summary, indent=2, sort_keys=True, default=_json_default))
    else:
        print(human)
    sys.stdout.flush()


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def positive_int(flag: str):
    """argparse type for a flag that must be an integer >= 1 (names the flag in the error)."""

    def _parse(v: str) -> int:
        try:
            n = int(v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be an integer, got {v!r}") from None
        if n < 1:
            raise argparse.ArgumentTypeError(f"{flag} must be >= 1, got {n}")
        return n

    return _parse


def non_negative_int(flag: str):
    def _parse(v: str) -> int:
        try:
            n = int(v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be an integer, got {v!r}") from None
        if n < 0:
            raise argparse.ArgumentTypeError(f"{flag} must be >= 0, got {n}")
        return n

    return _parse


def fmt_table(rows: list[list[Any]], header: list[str]) -> str:
    """Plain-text table, columns left-aligned, for human summaries."""
    cells = [[str(h) for h in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def crop_shape_type(text: str) -> tuple[int, int]:
    """argparse type for `--crop-shape HxW`."""
    from cropray.archive.spec import parse_crop_shape
    from cropray.errors import CroprayError

    try:
        return parse_crop_shape(text)
    except CroprayError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
