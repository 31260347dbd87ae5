"""Ray job: a hyperparameter sweep, same arguments as `cropray tune`.

    ray job submit --address http://HEAD:8265 --working-dir . -- \\
        python jobs/tune_sweep.py /shared/labels --out /shared/sweeps/run1 --samples 32 --epochs 30

Inside a Ray job RAY_ADDRESS is set, so no --address is needed: the sweep joins its cluster and the
working dir (with cropray) reaches every trial. --out must be absolute, on storage every node sees:
the job's own directory is a temporary copy. Rerun with --resume after an interruption.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# The uploaded working dir holds the cropray package; make it importable without an install.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cropray.cli.tune import DESCRIPTION, add_tune_args, epilog, run  # noqa: E402
from cropray.errors import CroprayError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tune_sweep.py", description=DESCRIPTION, epilog=epilog(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_tune_args(p)
    args = p.parse_args(argv)
    try:
        if not Path(args.out).is_absolute():
            raise CroprayError(f"--out {args.out}: give an absolute path on shared storage (a job runs "
                               "in a temporary copy of the working dir)")
        return run(args)
    except CroprayError as e:
        print(f"tune_sweep: error: {e}", file=sys.stderr)
        return e.exit_code


if __name__ == "__main__":
    sys.exit(main())
