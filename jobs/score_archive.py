"""Ray job: score a crop archive, same arguments as `cropray score`.

    ray job submit --address http://HEAD:8265 --working-dir . -- \
        python jobs/score_archive.py MODEL INPUT OUTPUT [--actors N|MIN,MAX] [--keep COLS] ...

Inside a Ray job RAY_ADDRESS is set, so no --address is needed: the job joins its cluster.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# The uploaded working dir holds the cropray package; make it importable without an install.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cropray.cli.score import EPILOG, add_score_args, run  # noqa: E402
from cropray.errors import CroprayError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="score_archive.py", description=__doc__.splitlines()[0], epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_score_args(p)
    args = p.parse_args(argv)
    try:
        return run(args)
    except CroprayError as e:
        print(f"score_archive: error: {e}", file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
