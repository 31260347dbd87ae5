"""A real multi-process Ray cluster: `ray start --head` on loopback plus a second node started with
`ray start --address` (separate raylets, as on a real cluster); `jobs/score_archive.py` is submitted
with `ray job submit`, and its output is checked to be complete and exact. Both nodes are stopped
whatever happens (each `ray start --block` runs in its own process group, killed at the end; a plain
`ray stop` would also kill other Ray sessions on the machine).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive_nodes(env, dashboard) -> int:
    r = subprocess.run([str(BIN / "ray"), "list", "nodes", "--address", dashboard, "--format", "json"],
                       env=env, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        return 0
    try:
        return sum(1 for n in json.loads(r.stdout) if n.get("state") == "ALIVE")
    except json.JSONDecodeError:
        return 0


@pytest.fixture
def two_node_cluster(tmp_path):
    """Head (2 CPUs) + worker (2 CPUs) as separate `ray start` processes on loopback, token auth on."""
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16), RAY_USAGE_STATS_ENABLED="0")
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    port, dash = _free_port(), _free_port()
    dashboard = f"http://127.0.0.1:{dash}"
    temp = Path("/tmp") / f"crt{secrets.token_hex(3)}"  # short: Ray's socket paths have a length limit
    logs = tmp_path / "logs"
    logs.mkdir()
    # 2 logical CPUs per node: a 1-CPU node cannot hold a read task and a scoring actor at once.
    common = ["--block", "--node-ip-address=127.0.0.1", "--num-cpus=2", "--disable-usage-stats"]

    def node_ports():
        # Two nodes on one host (and maybe other Ray sessions): every agent port must be distinct,
        # or the second node's agents fail to bind and the Jobs API finds no agent.
        return [f"--dashboard-agent-listen-port={_free_port()}", f"--dashboard-agent-grpc-port={_free_port()}",
                f"--metrics-export-port={_free_port()}", f"--runtime-env-agent-port={_free_port()}"]

    procs = []
    try:
        procs.append(subprocess.Popen(
            [str(BIN / "ray"), "start", "--head", f"--port={port}", "--dashboard-host=127.0.0.1",
             f"--dashboard-port={dash}", f"--temp-dir={temp}", *common, *node_ports()],
            env=env, start_new_session=True, stdout=open(logs / "head.log", "w"), stderr=subprocess.STDOUT))
        deadline = time.time() + 120
        while _alive_nodes(env, dashboard) < 1:
            assert time.time() < deadline, (logs / "head.log").read_text()[-2000:]
            time.sleep(2)
        procs.append(subprocess.Popen(
            [str(BIN / "ray"), "start", f"--address=127.0.0.1:{port}", *common, *node_ports()],
            env=env, start_new_session=True, stdout=open(logs / "worker.log", "w"), stderr=subprocess.STDOUT))
        while _alive_nodes(env, dashboard) < 2:
            assert time.time() < deadline, (logs / "worker.log").read_text()[-2000:]
            time.sleep(2)
        yield env, dashboard, port
    finally:
        for p in reversed(procs):
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in reversed(procs):
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)


def test_score_job_submitted_to_a_two_node_cluster(two_node_cluster, tmp_path):
    from cropray.bundle import save_bundle
    from cropray.models import build_model
    from cropray.synth import synth_archive

    env, dashboard, port = two_node_cluster
    archive, model, out = tmp_path / "archive", tmp_path / "model", tmp_path / "scores"
    synth_archive(archive, 3000, files=4, seed=3)
    save_bundle(build_model("dedoppler"), model, threshold=5.0, train_summary={"labels": 0}, metrics={})
    sid = f"cropray-test-{secrets.token_hex(4)}"
    cmd = [str(BIN / "ray"), "job", "submit", "--address", dashboard, "--working-dir", str(ROOT),
           "--submission-id", sid, "--no-wait",
           # The Jobs API hands the driver the head's resolved (non-loopback) address; on a loopback
           # cluster the driver must join through 127.0.0.1 like the nodes, or objects cannot move.
           "--", "env", f"RAY_ADDRESS=127.0.0.1:{port}", "python", "jobs/score_archive.py", str(model), str(archive), str(out), "--json",
           "--actors", "2"]
    deadline = time.time() + 180
    while True:
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        # The head's job agent comes up a little after the node: the Jobs API says so; try again.
        if r.returncode == 0 or "No available agent" not in r.stderr + r.stdout or time.time() > deadline:
            break
        time.sleep(3)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ray_job = [str(BIN / "ray"), "job"]
    deadline = time.time() + 480
    status = ""
    while time.time() < deadline:
        status = subprocess.run([*ray_job, "status", "--address", dashboard, sid], env=env,
                                capture_output=True, text=True, timeout=60).stdout
        if any(w in status.upper() for w in ("SUCCEEDED", "FAILED", "STOPPED")):
            break
        time.sleep(3)
    logs = subprocess.run([*ray_job, "logs", "--address", dashboard, sid], env=env,
                          capture_output=True, text=True, timeout=60).stdout
    assert "SUCCEEDED" in status.upper(), status[-1000:] + "\n--- job logs ---\n" + logs[-4000:]
    scores = pd.read_parquet(out)
    truth = pd.read_parquet(archive, columns=["crop_id"])
    assert len(scores) == len(truth) == 3000
    assert scores["crop_id"].is_unique and set(scores["crop_id"]) == set(truth["crop_id"])
    assert np.isfinite(scores["score"]).all()
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["totals"]["rows_scored"] == 3000 and manifest["totals"]["reconciled"]


def test_unreachable_address_is_named(tmp_path):
    port = _free_port()
    r = subprocess.run([sys.executable, str(ROOT / "jobs" / "score_archive.py"), "m", "a", "o",
                        "--address", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert f"127.0.0.1:{port}" in r.stderr
