"""Every job script is thin and wires the CLI the same way: `sys.exit(main(["<command>", *argv]))`,
so its parser, validation, messages and exit codes are the CLI's."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

JOBS = Path(__file__).resolve().parents[1] / "jobs"
SCRIPTS = {"score_archive.py": "score", "tune_sweep.py": "tune", "train_model.py": "train"}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_job_script_without_arguments_prints_usage(script):
    r = subprocess.run([sys.executable, str(JOBS / script)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert f"usage: cropray {SCRIPTS[script]}" in r.stderr


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_job_scripts_stay_thin(script):
    code = [ln for ln in (JOBS / script).read_text().splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert len(code) < 50


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_job_scripts_call_the_cli_main_the_same_way(script):
    """No script re-implements argument parsing or error handling: one import, one call."""
    tree = ast.parse((JOBS / script).read_text())
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("cropray")]
    assert [(n.module, [a.name for a in n.names]) for n in imports] == [("cropray.cli", ["main"])]
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.Try))]
    main_block = tree.body[-1]
    assert isinstance(main_block, ast.If) and "__main__" in ast.unparse(main_block.test)
    assert ast.unparse(main_block.body[-1]) == f"sys.exit(main(['{SCRIPTS[script]}', *sys.argv[1:]]))"


def test_sweep_job_refuses_a_relative_out_before_joining(tmp_path):
    """Inside a Ray job (RAY_ADDRESS set) a relative --out is the job's temporary copy: refused by the
    library (cropray.ray_session.require_absolute), not only by the script, and before connecting
    (the address here is dead: a connection attempt would fail differently)."""
    env = {**os.environ, "RAY_ADDRESS": "127.0.0.1:9"}
    r = subprocess.run([sys.executable, str(JOBS / "tune_sweep.py"), str(tmp_path), "--out", "relative"],
                       capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "--out relative: give an absolute path" in r.stderr and "RAY_ADDRESS" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "relative").exists()
