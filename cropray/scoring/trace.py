"""Start-up tracing for `cropray score`: where the seconds before the first committed rows go.

`CROPRAY_TRACE=FILE` makes the driver and every actor append one JSON line per stage
(`{"t": wall clock, "pid", "who", "stage"}`) to FILE; unset, `mark` is one dict lookup. Wall-clock
time (not perf_counter) so that the driver's and the actors' lines share one time axis on one host.
Ray workers inherit the driver's environment (the embedded cluster is started by this process), so
setting the variable before `cropray score` traces the actors too. benchmarks/startup.py reads it.
Lines are appended with one `write` each (O_APPEND: whole lines, never interleaved mid-line).
"""

from __future__ import annotations

import json
import os
import time

ENV = "CROPRAY_TRACE"
T_PROCESS = time.time()  # this module is imported early by the CLI: close to process start


def mark(stage: str, who: str = "driver", **extra) -> None:
    """Record that `stage` was reached now (no-op unless $CROPRAY_TRACE names a file)."""
    path = os.environ.get(ENV)
    if not path:
        return
    rec = {"t": round(time.time(), 4), "pid": os.getpid(), "who": who, "stage": stage, **extra}
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps(rec) + "\n").encode())
        finally:
            os.close(fd)
    except OSError:
        pass  # tracing must never break scoring


def process_start() -> float | None:
    """This process's start (wall clock, from /proc; None elsewhere): an actor's boot before our code."""
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22: starttime, clock ticks after boot
        with open("/proc/stat") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return round(btime + ticks / os.sysconf("SC_CLK_TCK"), 2)
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def read(path) -> list[dict]:
    """The trace's records, oldest first (unparsable lines skipped)."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
    except OSError:
        return []
    return sorted(out, key=lambda r: r["t"])
