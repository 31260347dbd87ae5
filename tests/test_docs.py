"""The docs stay true to the tree: every module is in the development map, the README stays a short
story, relative links resolve, and nothing cites a document outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# A relative link target in markdown: [text](target) or ![alt](target), without the #anchor.
LINK = re.compile(r"!?\[[^\]]*\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_development_map_lists_every_module():
    text = (ROOT / "docs" / "development.md").read_text()
    missing = []
    for py in sorted((ROOT / "cropray").rglob("*.py")):
        pkg = py.parent.relative_to(ROOT).as_posix()
        section = text.split(f"### `{pkg}/`", 1)
        if len(section) < 2 or f"| `{py.name}` |" not in section[1].split("\n### ", 1)[0]:
            missing.append(py.relative_to(ROOT).as_posix())
    assert not missing, f"add these to docs/development.md's module map: {missing}"


def test_readme_is_a_short_story():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; move detail into docs/"


def test_relative_links_resolve():
    broken = []
    for doc in DOCS:
        for target in LINK.findall(doc.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert not broken, f"broken links: {broken}"


def test_no_document_outside_the_repository_is_cited():
    """Neither the docs nor the code cite documents a reader of the repository cannot open (or issue numbers)."""
    pattern = re.compile(r"PERF_NOTES|RAY_NOTES|SPEC\.md|\bSPEC \d|\bissue \d+|\blever \d", re.IGNORECASE)
    code = [p for d in ("cropray", "tests", "jobs", "research", "scripts") for p in sorted((ROOT / d).rglob("*"))
            if p.suffix in (".py", ".sh", ".md", ".yaml") and p.name != "test_docs.py"]
    hits = [f"{doc.relative_to(ROOT)}:{i}: {line.strip()}" for doc in [*DOCS, *code]
            for i, line in enumerate(doc.read_text().splitlines(), 1) if pattern.search(line)]
    assert not hits, "cite nothing outside the repository:\n" + "\n".join(hits)


def test_development_map_lists_no_module_that_is_gone():
    text = (ROOT / "docs" / "development.md").read_text()
    gone = []
    for block in text.split("\n### `")[1:]:
        pkg = block.split("/`", 1)[0]
        if not pkg.startswith("cropray"):
            continue
        for name in re.findall(r"^\| `([\w.]+\.py)` \|", block, re.MULTILINE):
            if not (ROOT / pkg / name).is_file():
                gone.append(f"{pkg}/{name}")
    assert not gone, f"remove these from docs/development.md's module map: {gone}"
