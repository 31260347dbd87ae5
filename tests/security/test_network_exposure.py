"""The embedded Ray that `cropray score`, `tune`, `demo` and `bench` start listens on loopback only, and
serves no metrics to a client without the token.

The cluster is started exactly as those commands start it (cropray.ray_session.ray_session) in a fresh
driver process, never the test session's shared `ray_local`; while it runs (a task and an actor
alive, so worker processes exist) every listening TCP socket of the driver and of every process it
started (GCS, raylet, dashboard, monitor, agents, workers) is listed with psutil.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

DRIVER = r"""
import os, sys
from cropray.ray_session import ray_session

with ray_session() as s:
    import ray

    @ray.remote(num_cpus=0)
    class Echo:
        def pid(self):
            return os.getpid()

    @ray.remote(num_cpus=0)
    def pid():
        return os.getpid()

    a = Echo.remote()
    print("READY", s.kind, s.private, ray.get(a.pid.remote()), ray.get(pid.remote()), flush=True)
    sys.stdin.readline()  # the test scans while the cluster runs, then lets it stop
"""


def _psutil():
    import ray  # noqa: F401, I001  (puts Ray's vendored psutil on sys.path, so first)
    import psutil

    return psutil


def _listeners(root_pid: int) -> list[tuple[str, int, str]]:
    """(ip, port, process name) of every listening TCP socket of root_pid and its descendants."""
    psutil = _psutil()
    root = psutil.Process(root_pid)
    procs = {p.pid: p for p in [root, *root.children(recursive=True)]}
    out = []
    for c in psutil.net_connections(kind="tcp"):
        if c.status == psutil.CONN_LISTEN and c.pid in procs:
            try:
                name = procs[c.pid].name()
            except psutil.Error:
                name = "?"
            out.append((c.laddr.ip, c.laddr.port, name))
    return out


def _is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped  # ::ffff:127.0.0.1, how gRPC's dual-stack sockets show IPv4 loopback
    return addr.is_loopback


def _http_status(port: int) -> int | None:
    """The HTTP status of GET / on 127.0.0.1:port without a token; None when it does not speak HTTP/1.1."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=3) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception:  # gRPC (HTTP/2) ports, resets
        return None


def _answers_metrics(port: int) -> str | None:
    """The first bytes of a Prometheus page served on 127.0.0.1:port without a token, else None."""
    for path in ("/metrics", "/"):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as r:
                body = r.read(4096).decode("utf-8", "replace")
        except Exception:  # HTTPError 401 (token auth), BadStatusLine (a gRPC port), refused: no metrics
            continue
        if "# HELP" in body or "# TYPE" in body:
            return body[:80]
    return None


@pytest.mark.slow
def test_embedded_ray_listens_on_loopback_only_and_serves_no_metrics(tmp_path):
    env = {**os.environ, "RAY_AUTH_MODE": "token", "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)  # an embedded cluster, as `cropray score` starts outside a Ray job
    p = subprocess.Popen([sys.executable, "-c", DRIVER], cwd=tmp_path, env=env, text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = p.stdout.readline()
        assert line.startswith("READY"), f"driver did not start: {line!r} {p.stderr.read()[-3000:] if p.poll() is not None else ''}"
        _, kind, private, actor_pid, task_pid = line.split()
        assert kind == "embedded" and private == "True"
        found = _listeners(p.pid)
        names = {n for _, _, n in found}
        # The scan must have seen the cluster itself, or it proves nothing.
        assert {"gcs_server", "raylet"} <= names, found
        assert any(n.startswith("ray::") for n in names), found  # workers / actors / agents
        exposed = [f for f in found if not _is_loopback(f[0])]
        assert not exposed, f"listening beyond loopback: {exposed}"
        metrics = {port: m for _, port, _ in found if (m := _answers_metrics(port))}
        assert not metrics, f"metrics served without a token: {metrics}"
        # Token auth is on: the HTTP endpoints there are (dashboard agent, runtime-env agent) refuse us.
        statuses = {port: st for _, port, _ in found if (st := _http_status(port)) is not None}
        assert statuses and set(statuses.values()) == {401}, statuses
    finally:
        if p.poll() is None:
            p.stdin.write("\n")
            p.stdin.flush()
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
    assert p.returncode == 0, p.stderr.read()[-3000:]
