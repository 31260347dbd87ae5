"""Every job script is thin, prints usage and exits 2 without its arguments."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

JOBS = Path(__file__).resolve().parents[1] / "jobs"


@pytest.mark.parametrize("script", ["score_archive.py", "tune_sweep.py", "train_model.py"])
def test_job_script_without_arguments_prints_usage(script):
    r = subprocess.run([sys.executable, str(JOBS / script)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "usage" in r.stderr.lower()


@pytest.mark.parametrize("script", ["score_archive.py", "tune_sweep.py", "train_model.py"])
def test_job_scripts_stay_thin(script):
    code = [ln for ln in (JOBS / script).read_text().splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert len(code) < 50
