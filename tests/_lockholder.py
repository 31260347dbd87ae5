"""Another process holding an output lock, as a running `cropray score`/`train`/`tune` would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOLD = ("import sys, time\nfrom cropray.outlock import output_lock\n"
        "with output_lock(sys.argv[1], beside=sys.argv[2] == '1'):\n    print('locked', flush=True)\n    time.sleep(600)\n")


def hold_lock(directory, beside: bool = False) -> subprocess.Popen:
    """Start a real process that takes the lock on `directory` and keeps it until killed."""
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(directory), "1" if beside else "0"], cwd=ROOT,
                         stdout=subprocess.PIPE)
    assert p.stdout.readline().strip() == b"locked"
    return p
