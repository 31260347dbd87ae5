"""Every kept research script still runs: its `--smoke-test` (tiny sizes, seconds to a minute) in a fresh
process, as a reader would start it (`python research/<script>.py --smoke-test`).

The list is maintained by hand: a script added to research/ joins it here with its extra arguments
(where its outputs go), so nothing in research/ breaks silently when the package changes under it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

RESEARCH = Path(__file__).resolve().parents[2] / "research"

# (script, extra arguments with {tmp} for the test's own folder, slow?)
SCRIPTS = [
    ("decode.py", [], False),
    ("quality.py", [], False),
    ("profile_dedoppler.py", [], False),
    ("shift_quality.py", ["--jsonl", "{tmp}/rows.jsonl"], True),
    ("active_learning.py", ["--out", "{tmp}/al"], True),
    ("sweep_value.py", ["--work", "{tmp}/sv"], True),
    ("injection_modes.py", [], True),
    ("paired_rules.py", ["--jsonl", "{tmp}/rules.jsonl"], True),
]
# Scripts whose smoke test lives beside the tests of their own package (it checks more than the exit code).
ELSEWHERE = {"quality_table.py": "tests/research/test_outside_sim.py::test_quality_table_smoke"}


def test_the_list_names_every_script_that_has_a_smoke_test():
    """A script with a --smoke-test flag that nobody runs would break silently: each must be listed."""
    listed = {s for s, _, _ in SCRIPTS} | set(ELSEWHERE)
    with_flag = {p.name for p in RESEARCH.glob("*.py") if "--smoke-test" in p.read_text()}
    assert with_flag - listed == set(), f"add these to SCRIPTS: {sorted(with_flag - listed)}"
    assert all((RESEARCH / s).is_file() for s in listed)


@pytest.mark.parametrize(
    "script,extra",
    [pytest.param(s, e, id=s, marks=[pytest.mark.slow] if slow else []) for s, e, slow in SCRIPTS],
)
def test_smoke(script, extra, tmp_path):
    args = [a.format(tmp=tmp_path) for a in extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}  # the installed cropray, one thread
    done = subprocess.run([sys.executable, str(RESEARCH / script), "--smoke-test", *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{script} --smoke-test exited {done.returncode}:\n{done.stderr[-4000:]}"
    assert done.stdout.strip(), f"{script} printed nothing"
