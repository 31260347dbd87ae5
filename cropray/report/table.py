"""`fmt_table`: the plain-text table of every human summary (CLI commands, `cropray bench`'s report)."""

from __future__ import annotations

from typing import Any


def fmt_table(rows: list[list[Any]], header: list[str]) -> str:
    """Plain-text table, columns left-aligned, for human summaries."""
    cells = [[str(h) for h in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
