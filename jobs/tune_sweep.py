"""Ray job: a hyperparameter sweep, same arguments as `cropray tune`.

    ray job submit --address http://HEAD:8265 --working-dir . -- \\
        python jobs/tune_sweep.py /shared/labels --out /shared/sweeps/run1 --samples 32 --epochs 30

    # learning from the unlabelled archive too (`cropray train --archive`'s flags):
    ray job submit --address http://HEAD:8265 --working-dir . -- \
        python jobs/tune_sweep.py /shared/labels --out /shared/sweeps/run2 --archive s3://bucket/archive \
        --archive-crops 20000 --target-fpr 0.01   # the refit's threshold: 1% of screened backgrounds above it

Inside a Ray job RAY_ADDRESS is set, so no --address is needed: the sweep joins its cluster and the
working dir (with cropray) reaches every trial. --out must be absolute, on storage every node sees:
the job's own directory is a temporary copy (`cropray tune` refuses a relative --out on a joined
cluster). --archive is read by the job's driver only (on the head node: shared storage or a URI such
as s3://); its injected crops reach every trial through Ray's object store. Rerun with --resume after
an interruption (the same archive, or none: the sweep's own is reused).
"""

from __future__ import annotations

import sys
from pathlib import Path

# The uploaded working dir holds the cropray package; make it importable without an install.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cropray.cli import main  # noqa: E402

if __name__ == "__main__":
    # Same parser, validation, messages and exit codes (0 / 1 attention / 2 bad usage) as `cropray tune`.
    sys.exit(main(["tune", *sys.argv[1:]]))
