"""Ray job: score a crop archive, same arguments as `cropray score`.

    ray job submit --address http://HEAD:8265 --working-dir . -- \\
        python jobs/score_archive.py MODEL INPUT OUTPUT [--actors N|MIN,MAX] [--keep COLS] ...

Inside a Ray job RAY_ADDRESS is set, so no --address is needed: the job joins its cluster.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The uploaded working dir holds the cropray package; make it importable without an install.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cropray.cli import main  # noqa: E402

if __name__ == "__main__":
    # Same parser, validation, messages and exit codes (0 / 1 attention / 2 bad usage) as `cropray score`.
    sys.exit(main(["score", *sys.argv[1:]]))
