"""A real queue file and a real `cropray label` subprocess for the labelling tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

URL = re.compile(r"open (http://127\.0\.0\.1:(\d+)/\?token=(\S+))")


def write_queue(path: Path, n: int = 12, *, seed: int = 0, drop: str | None = None) -> list[str]:
    """A queue as `cropray suggest` writes it (synthetic crops), optionally without one column."""
    from cropray.archive import crops_table, write_table_atomic
    from cropray.synth import generate

    b = generate(n, seed=seed)
    ids = [f"q{seed}-{i:03d}" for i in range(n)]
    rng = np.random.default_rng(seed)
    feat = rng.standard_normal((n, 4)).astype(np.float32)
    t = crops_table({"crop_id": ids}, b.crops)
    extra = {"rank": pa.array(np.arange(n, dtype=np.int32)), "score": pa.array(rng.random(n).astype(np.float32)),
             "reason": pa.array(["uncertain"] * n), "source_file": pa.array(["synthetic.parquet"] * n),
             "features": pa.FixedSizeListArray.from_arrays(pa.array(feat.reshape(-1)), 4)}
    for k, v in extra.items():
        t = t.append_column(k, v)
    if drop:
        t = t.drop_columns([drop])
    write_table_atomic(t, path)
    return ids


class LabelServer:
    """`cropray label QUEUE --out LABELS` as a child process; `url`/`port` from its stdout."""

    def __init__(self, queue: Path, labels: Path, port: int = 0, extra=()):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "cropray", "label", str(queue), "--out", str(labels),
                                      "--port", str(port or 8765), *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.url = self.port = self.token = None
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = URL.search(line)
            if m:
                self.url, self.port, self.token = m.group(1), int(m.group(2)), m.group(3)
                return
        err = self.proc.stderr.read() if self.proc.poll() is not None else ""
        raise AssertionError(f"cropray label printed no URL (rc {self.proc.poll()}): {err}")

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no chance to clean up
        self.proc.wait(10)

    def stop(self) -> str:
        self.proc.terminate()
        out, err = self.proc.communicate(timeout=30)
        return err


@pytest.fixture
def label_server():
    started = []

    def start(*a, **kw):
        s = LabelServer(*a, **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        if s.proc.poll() is None:
            s.kill()
