"""A one-page HTML report with every image inlined (base64), so the file stands alone.

The page is the jinja2 template `templates/report.html.j2` (package data), autoescaped: every title,
paragraph, table cell and caption is text, never markup.
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
from dataclasses import dataclass, field
from pathlib import Path

TEMPLATE = "report.html.j2"


@dataclass
class Section:
    """One titled block: optional paragraphs, key figures, tables and images."""

    title: str
    paragraphs: list[str] = field(default_factory=list)  # plain text (escaped)
    kpis: dict[str, str] = field(default_factory=dict)  # label -> value
    tables: list[tuple[list[str], list[list]]] = field(default_factory=list)  # (header, rows)
    images: list[tuple[str, str]] = field(default_factory=list)  # (png path, caption)
    wide: bool = False  # images span the page (crop grids), instead of side by side


@functools.lru_cache(maxsize=1)
def _template():
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("cropray.report", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template(TEMPLATE)


def _data_uri(path: str) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def _figures(s: Section) -> list[dict]:
    """Images that exist become data URIs; a missing one becomes a note naming its path."""
    return [{"src": _data_uri(path) if path and Path(path).is_file() else None, "path": str(path), "caption": cap}
            for path, cap in s.images]


def render_html(out: str | Path, title: str, subtitle: str, sections: list[Section]) -> Path:
    """Write the report to `out`; images that do not exist are skipped with a note."""
    page = _template().render(
        title=title, subtitle=subtitle, generated=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        sections=[{"title": s.title, "paragraphs": s.paragraphs, "kpis": {k: str(v) for k, v in s.kpis.items()},
                   "tables": s.tables, "figures": _figures(s), "wide": s.wide} for s in sections])
    out = Path(out)
    out.write_text(page, encoding="utf-8")
    return out
