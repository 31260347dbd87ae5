"""`cropray score --json`: stdout holds the JSON document only, even when Ray prints.

Killing the scoring actor makes the driver print Ray's "(raylet) A worker died or was killed ..."
(ANSI-coloured) through sys.stdout; before cli/_common.json_stdout it came first on stdout and the
document no longer parsed. A real subprocess with its own embedded Ray; the actor is SIGKILLed once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import write_good

ROOT = Path(__file__).resolve().parents[2]
FLAGS = ["--actors", "1", "--cpus-per-actor", "0.5", "--precision", "fp32", "--batch-size", "64"]


def _kill_first_actor(pid: int, timeout: float = 240) -> tuple[str | None, list]:
    """SIGKILL the first Ray Data actor (ray::MapWorker(...ScoreBatch...)) under `pid`; its title, and
    the addresses every process of the run listened on just before (during a real
    `cropray score`; tests/security/test_network_exposure.py checks the same more closely)."""
    import ray  # noqa: F401, I001  (puts Ray's vendored psutil on sys.path, so first)
    import psutil

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            kids = psutil.Process(pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return None, []
        for c in kids:
            try:
                title = c.name() + " " + " ".join(c.cmdline()[:1])
            except psutil.Error:
                continue
            if "MapWorker" in title and "ScoreBatch" in title:
                pids = {pid, *(k.pid for k in kids)}
                listening = [x.laddr.ip for x in psutil.net_connections(kind="tcp")
                             if x.status == psutil.CONN_LISTEN and x.pid in pids]
                c.kill()
                return title, listening
        time.sleep(0.1)
    return None, []


@pytest.mark.slow
def test_json_stdout_parses_when_an_actor_is_killed(tmp_path, bundle_dir):
    n = 600
    write_good(tmp_path / "in", n, files=2)
    cmd = [sys.executable, "-m", "cropray", "score", str(bundle_dir()), str(tmp_path / "in"), str(tmp_path / "out"),
           *FLAGS, "--json"]
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        killed, listening = _kill_first_actor(p.pid)
        out, err = p.communicate(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
    assert killed, "the run ended before its actor could be killed: the test proved nothing"
    assert listening and set(listening) <= {"127.0.0.1", "::ffff:127.0.0.1"}, listening
    said = out + err
    assert "(raylet)" in said and "died" in said, "Ray printed nothing about the dead actor: the test proved nothing"
    try:
        s = json.loads(out)  # the whole of stdout is one JSON document
    except ValueError:
        pytest.fail(f"stdout is not one JSON document: {out[:300]!r}")
    assert p.returncode == 0 and s["rows_scored"] == n, err[-2000:]
