"""A one-page HTML report with every image inlined (base64), so the file stands alone."""

from __future__ import annotations

import base64
import datetime as _dt
import html
from dataclasses import dataclass, field
from pathlib import Path

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
.sub{color:#666;margin-top:0} table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
td,th{border:1px solid #ddd;padding:.25rem .6rem;text-align:left} th{background:#f5f5f5}
.figs{display:flex;flex-wrap:wrap;gap:1rem} figure{margin:0;flex:1 1 320px;max-width:520px}
figure img{width:100%;border:1px solid #eee} figure.wide{max-width:100%;flex-basis:100%} figcaption{font-size:.85rem;color:#555}
.kpi{display:flex;gap:1rem;flex-wrap:wrap} .kpi div{background:#f7f9fc;border:1px solid #e3e8f0;border-radius:6px;padding:.5rem .8rem}
.kpi b{display:block;font-size:1.3rem} code{background:#f4f4f4;padding:0 .25rem;border-radius:3px}
.note{color:#555;font-size:.9rem}
"""


@dataclass
class Section:
    """One titled block: optional paragraphs, key figures, tables and images."""

    title: str
    paragraphs: list[str] = field(default_factory=list)  # plain text (escaped)
    kpis: dict[str, str] = field(default_factory=dict)  # label -> value
    tables: list[tuple[list[str], list[list]]] = field(default_factory=list)  # (header, rows)
    images: list[tuple[str, str]] = field(default_factory=list)  # (png path, caption)
    wide: bool = False  # images span the page (crop grids), instead of side by side


def _img(path: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f"data:image/png;base64,{data}"


def _table(header: list[str], rows: list[list]) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{trs}</table>"


def render_html(out: str | Path, title: str, subtitle: str, sections: list[Section]) -> Path:
    """Write the report to `out`; images that do not exist are skipped with a note."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1><p class='sub'>{html.escape(subtitle)} · "
             f"{_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}</p>"]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        if s.kpis:
            parts.append("<div class='kpi'>" + "".join(
                f"<div>{html.escape(k)}<b>{html.escape(str(v))}</b></div>" for k, v in s.kpis.items()) + "</div>")
        parts += [f"<p>{html.escape(p)}</p>" for p in s.paragraphs]
        parts += [_table(h, r) for h, r in s.tables]
        figs = []
        for path, cap in s.images:
            if path and Path(path).is_file():
                figs.append(f"<figure{' class=wide' if s.wide else ''}><img src='{_img(path)}' alt='{html.escape(cap)}'><figcaption>{html.escape(cap)}</figcaption></figure>")
            else:
                figs.append(f"<p class='note'>(missing image: {html.escape(str(path))})</p>")
        if figs:
            parts.append("<div class='figs'>" + "".join(figs) + "</div>")
    parts.append("</body></html>")
    out = Path(out)
    out.write_text("\n".join(parts), encoding="utf-8")
    return out
