"""The HTML report: one self-contained file from the packaged jinja2 template, every text escaped."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from cropray.report import Section, render_html  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _png(path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [0, 1])
    fig.savefig(path)
    plt.close(fig)
    return path


def test_page_inlines_images_escapes_text_and_notes_missing_images(tmp_path):
    png = _png(tmp_path / "roc.png")
    sections = [
        Section("Headline <b>", kpis={"ROC-AUC": "0.98 [0.97, 0.99]", "n": 1200},
                paragraphs=["a <script>alert(1)</script> & co"]),
        Section("Plots", tables=[(["metric", "value"], [["roc_auc", 0.98], ["<i>x</i>", "y & z"]])],
                images=[(str(png), "ROC <curve>"), (str(tmp_path / "gone.png"), "missing one")], wide=True),
    ]
    out = render_html(tmp_path / "r.html", "cropray <eval>", "sub & title", sections)
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert "<title>cropray &lt;eval&gt;</title>" in page and "Headline &lt;b&gt;" in page
    assert "<td>&lt;i&gt;x&lt;/i&gt;</td><td>y &amp; z</td>" in page and "<b>1200</b>" in page
    # the image is inlined byte for byte; nothing refers to a file on disk
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert [base64.b64decode(u) for u in uris] == [png.read_bytes()]
    assert '<figure class="wide">' in page and "<figcaption>ROC &lt;curve&gt;</figcaption>" in page
    assert f"(missing image: {tmp_path / 'gone.png'})" in page
    assert page.count("<h2>") == 2 and page.count("<table>") == 1


def test_template_is_package_data_that_pyproject_installs():
    """The template ships with the package (pyproject's package-data globs cover every template)."""
    tomllib = __import__("pytest").importorskip("tomllib")
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    templates = sorted((ROOT / "cropray" / "report" / "templates").iterdir())
    assert templates, "no templates found"
    for t in templates:
        assert any(t.match(g) for g in data["cropray.report"]), f"{t.name} is not in package-data"
