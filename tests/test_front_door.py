"""The front door is fast: `import cropray`, `cropray --help`, every `cropray <job> --help` and usage
errors import neither torch nor Ray (each costs seconds on 2 cores), checked in fresh processes.

Also: every third-party package imported anywhere in cropray/ is declared in pyproject.toml.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from cropray.cli import SUBCOMMANDS

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "ray")

# Runs each argv through the real entry point in ONE process (modules accumulate, so a later case is
# checked with everything the earlier ones imported) and reports exit status + heavy modules per case.
_PROBE = """
import contextlib, io, json, sys
from cropray.cli import main
out = []
for argv in json.loads(sys.argv[1]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code
    heavy = sorted(m for m in sys.modules if m.split('.')[0] in HEAVY)
    out.append({"argv": argv, "rc": rc, "heavy": heavy[:5], "stderr": err.getvalue()[-300:]})
print(json.dumps(out))
""".replace("HEAVY", repr(HEAVY))

USAGE_ERRORS = [
    [],  # no command: help, exit 2
    ["no-such-job"],
    ["score"],  # missing MODEL INPUT OUTPUT
    ["score", "m", "i", "o", "--batch-size", "0"],
    ["train", "labels", "--out", "m", "--epochs", "0"],
    ["synth", "out", "--n", "-3"],
    ["tune", "labels", "--out", "o", "--samples", "x"],
    ["inspect", "p", "--crop-shape", "banana"],
]


def _probe(argvs: list[list[str]]) -> list[dict]:
    p = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(argvs)], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_import_cropray_imports_no_heavy_package():
    code = ("import sys, cropray, cropray.cli, cropray.train.config, cropray.tune.config, cropray.scoring.config, "
            "cropray.synth.config, cropray.demo.config, cropray.bench.config, cropray.train, cropray.tune, "
            "cropray.evaluate, cropray.fastpath, cropray.archive, cropray.report, cropray.synth, cropray.bench\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.strip() == "[]"


def test_help_of_every_job_and_usage_errors_import_neither_torch_nor_ray():
    cases = [["--help"], ["--version"]] + [[job, "--help"] for job in SUBCOMMANDS] + USAGE_ERRORS
    res = _probe(cases)
    assert [r["argv"] for r in res] == cases
    for r in res:
        assert r["heavy"] == [], f"cropray {' '.join(r['argv'])} imported {r['heavy']}"
        want = 0 if r["argv"] and r["argv"][-1] in ("--help", "--version") else 2
        assert r["rc"] == want, r
        if want == 2 and r["argv"]:
            assert "Traceback" not in r["stderr"] and "error" in r["stderr"], r


def test_importtime_of_cropray_help_lists_no_heavy_module():
    """The measurement the README gives: `python -X importtime -m cropray --help`."""
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "cropray", "--help"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "usage: cropray" in p.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in p.stderr.splitlines() if line.startswith("import time:")}
    assert "cropray.cli" in imported  # the measurement itself worked
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY)
    assert heavy == [], heavy


def _imported_roots() -> dict[str, str]:
    """Top-level third-party module -> one file of cropray/ importing it (absolute imports only)."""
    roots: dict[str, str] = {}
    for path in sorted((ROOT / "cropray").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            for n in names:
                root = n.split(".")[0]
                if root != "cropray" and root not in sys.stdlib_module_names:
                    roots.setdefault(root, str(path.relative_to(ROOT)))
    return roots


def _project() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_imported_package_is_declared_in_pyproject():
    project = _project()
    reqs = project["dependencies"] + [r for group in project["optional-dependencies"].values() for r in group]
    declared = {_norm(re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0]) for r in reqs}
    dists = metadata.packages_distributions()  # import name -> distributions providing it
    missing = {}
    for mod, where in _imported_roots().items():
        provided_by = {_norm(d) for d in dists.get(mod, [mod])}
        if not provided_by & declared:
            missing[mod] = where
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


@pytest.mark.parametrize("name", ["jinja2", "scipy", "tqdm"])
def test_packages_cropray_relies_on_are_declared(name):
    project = _project()
    assert any(_norm(r).startswith(name) for r in project["dependencies"]), name


LAZY_PACKAGES = ["archive", "bench", "evaluate", "fastpath", "models", "report", "synth", "train", "tune"]


def test_lazy_re_exports_resolve_to_their_objects_not_to_submodules():
    """Importing a submodule sets the package attribute of its name: a re-exported `fit` would become
    the module `cropray.train.fit`. Every re-export must still be the object after every submodule loaded."""
    code = f"""
import importlib, pkgutil, types
bad = []
for name in {LAZY_PACKAGES!r}:
    pkg = importlib.import_module("cropray." + name)
    for m in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"cropray.{{name}}.{{m.name}}")
    for export in getattr(pkg, "__all__", []):
        if isinstance(getattr(pkg, export), types.ModuleType):
            bad.append(f"cropray.{{name}}.{{export}}")
print(bad)
"""
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.strip().splitlines()[-1] == "[]"
