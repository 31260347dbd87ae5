"""Crashes: the driver killed with SIGKILL and rerun; a worker node lost mid-job. Output exactly once.

Both run in subprocesses with their own Ray (an embedded one; a ray.cluster_utils.Cluster), so they
do not disturb the shared session.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import ids, write_good

from cropray.scoring.commit import KILL_AFTER_COMMITS_ENV

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FLAGS = ["--actors", "1", "--cpus-per-actor", "0.5", "--precision", "fp32", "--batch-size", "16",
         "--unit-rows", "1"]


def _descendants(pid: int) -> list:
    import ray  # noqa: F401, I001  (puts Ray's vendored psutil on sys.path, so first)
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _done_units(out: Path) -> int:
    try:
        units = json.loads((out / "_manifest.json").read_text())["units"]
    except (OSError, ValueError, KeyError):
        return 0
    return sum(u.get("status") == "done" for u in units.values())


@pytest.mark.slow
def test_driver_killed_then_rerun_scores_every_crop_exactly_once(tmp_path, bundle_dir):
    n, files, kill_after = 2400, 12, 3
    write_good(tmp_path / "in", n, files=files)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "cropray", "score", str(bundle_dir()), str(tmp_path / "in"), str(out), *FLAGS, "--json"]
    # The driver SIGKILLs itself right after recording its 3rd unit commit (the library's test hook):
    # a crash mid-job at a known point, whatever the machine's speed.
    env = {**os.environ, KILL_AFTER_COMMITS_ENV: str(kill_after)}
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    children = []
    try:
        deadline = time.time() + 300  # a hang guard only
        while p.poll() is None and time.time() < deadline:
            children = _descendants(p.pid) or children  # Ray's processes, to clean up after the kill
            time.sleep(0.1)
        p.wait(timeout=30)
    finally:
        for c in children:  # the killed driver's embedded Ray (raylet, GCS, workers), by pid
            try:
                c.kill()
            except Exception:
                pass
    assert p.returncode == -signal.SIGKILL, f"the driver was not killed by the hook (exit {p.returncode})"
    assert _done_units(out) == kill_after < files
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    s = json.loads(r.stdout)
    assert s["resumed"] and s["units_already_done"] == kill_after and s["rows_scored"] == n
    df = pd.read_parquet(out)
    assert len(df) == n and df["crop_id"].is_unique and set(df["crop_id"]) == set(ids("c", n))
    assert not (out / "_tmp").exists()


@pytest.mark.slow
def test_worker_node_removed_mid_job_output_exact(tmp_path, bundle_dir):
    n = 960
    write_good(tmp_path / "in", n, files=12)
    r = subprocess.run([sys.executable, str(HERE / "multinode_job.py"), str(bundle_dir()), str(tmp_path / "in"),
                        str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    s = res["summary"]
    assert res["event"].get("removed") and res["event"]["commits_before_removal"] == 1
    assert s["rows_scored"] == n and s["reconciled"] and s["state"] == "complete"
    df = pd.read_parquet(tmp_path / "out")
    assert len(df) == n and df["crop_id"].is_unique and set(df["crop_id"]) == set(ids("c", n))
