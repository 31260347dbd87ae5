"""Ray job: train a model bundle, same arguments as `cropray train`.

    ray job submit --address http://HEAD:8265 --working-dir . -- \\
        python jobs/train_model.py /shared/labels --out /shared/models/m1 --arch auto

Learning from an unlabelled archive takes the same flags as `cropray train`: --archive (signals
injected into backgrounds drawn from it; --archive-crops, --inject-config) and --self-train
(pseudo-labels on archive crops, one teacher per CV fold; --self-train-rounds, --self-train-tau,
--self-train-pool). The archive is read by the job's driver, so it must be on storage that node
reaches (shared storage or an object-store URI), like LABELS:

    ray job submit --address http://HEAD:8265 --working-dir . -- \\
        python jobs/train_model.py /shared/labels --out /shared/models/m2 \\
        --archive /shared/archive --archive-crops 20000 --self-train

--target-fpr F (with --archive) sets the threshold from the archive's own screened backgrounds (the
score a fraction F of them exceed) instead of Youden's J on the labels.

Training runs in the job's driver process (one node; CUDA when that node has a GPU — ask for one
with `ray job submit --entrypoint-num-gpus 1`). --out must be on storage you can reach afterwards:
the job's own directory is a temporary copy.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The uploaded working dir holds the cropray package; make it importable without an install.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cropray.cli import main  # noqa: E402

if __name__ == "__main__":
    # Same parser, validation, messages and exit codes (0 / 1 attention / 2 bad usage) as `cropray train`.
    sys.exit(main(["train", *sys.argv[1:]]))
