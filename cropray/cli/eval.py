"""`cropray eval` — not available yet (filled by a later issue); exits 2 without fake output."""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    p = sub.add_parser("eval", help="(not available yet)", description="Not available yet in this version.")
    p.set_defaults(func=run)
    p.add_argument("rest", nargs=argparse.REMAINDER)


def run(args) -> int:
    print("cropray eval: not available yet in this version of cropray", file=sys.stderr)
    return 2
