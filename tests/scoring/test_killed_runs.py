"""What killed runs leave behind, and who removes it (real SIGKILLs of real `cropray` processes):

- `cropray suggest` killed mid-run leaves `.QUEUE.scores-XXXXXXXX/` (its scratch score output); the
  next `suggest` writing the same QUEUE removes it, and leaves alone one a live run holds;
- an unreachable RAY_ADDRESS is refused before OUTPUT exists (no pending `_manifest.json` left);
- `cropray train` killed mid-run leaves `.MODEL.lock`; the next `train` to MODEL removes it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from conftest import write_good

from cropray.cli import main
from cropray.outlock import claim_scratch

ROOT = Path(__file__).resolve().parents[2]


def start(*args: str, env: dict | None = None) -> subprocess.Popen:
    """`python -m cropray ARGS` in a session of its own, so a SIGKILL of its group takes its children too."""
    return subprocess.Popen([sys.executable, "-m", "cropray", *args], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def kill_when(p: subprocess.Popen, ready, timeout: float = 180) -> None:
    """SIGKILL `p`'s process group once `ready()` is true."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert p.poll() is None, f"exited {p.returncode} before the kill: {p.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, "never reached the point to kill at"
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait(30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_killed_suggest_leaves_scores_that_the_next_run_removes(ray_local, tmp_path, bundle_dir, capsys):
    write_good(tmp_path / "in", 200, files=1)
    queue = tmp_path / "q.parquet"
    p = start("suggest", str(bundle_dir()), str(tmp_path / "in"), "--n", "4", "--out", str(queue))
    # killed once its scratch output holds the manifest (written before Ray starts), as in the field
    kill_when(p, lambda: any(tmp_path.glob(".q.parquet.scores-*/_manifest.json")))
    left = list(tmp_path.glob(".q.parquet.scores-*"))
    assert len(left) == 1 and (left[0] / "_manifest.json").exists()
    live, fd = claim_scratch(tmp_path, ".q.parquet.scores-")  # a live run's: must survive the cleanup
    try:
        rc = main(["suggest", str(bundle_dir()), str(tmp_path / "in"), "--n", "4", "--out", str(queue)])
        err = capsys.readouterr().err
        assert rc == 0, err
        assert not left[0].exists() and f"removed {left[0]}" in err
        assert live.is_dir()
        assert sorted(tmp_path.glob(".q.parquet.scores-*")) == [live]  # and this run removed its own
    finally:
        os.close(fd)


def test_an_unreachable_ray_address_is_refused_before_output_exists(tmp_path, bundle_dir):
    write_good(tmp_path / "in", 20, files=1)
    port = free_port()
    p = start("score", str(bundle_dir()), str(tmp_path / "in"), str(tmp_path / "out"),
              env={"RAY_ADDRESS": f"127.0.0.1:{port}"})
    _, err = p.communicate(timeout=120)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert p.returncode == 2 and len(lines) == 1, err
    assert lines[0].startswith(f"cropray score: error: RAY_ADDRESS 127.0.0.1:{port}: cannot reach"), err
    assert not (tmp_path / "out").exists()


def test_a_killed_train_leaves_a_lock_the_next_train_removes(tmp_path, capsys):
    from cropray.archive import write_archive
    from cropray.synth import generate

    b = generate(40, seed=0)
    write_archive(tmp_path / "lab", {"crop_id": np.arange(40).astype(np.int64), "label": b.label.astype(np.int64)},
                  b.crops)
    model, lock = tmp_path / "m", tmp_path / ".m.lock"
    args = ("train", str(tmp_path / "lab"), "--out", str(model), "--arch", "dedoppler", "--epochs", "1")
    p = start(*args)
    kill_when(p, lock.exists)
    assert lock.exists() and not model.exists()  # what a SIGKILL leaves: the lock file, no bundle
    rc = main(list(args))
    assert rc in (0, 1), capsys.readouterr().err
    assert model.is_dir() and not lock.exists()
