"""python -m research.outside_sim OUT --kind labels|fresh|faint|curved|archive --n N --seed S"""

from __future__ import annotations

import argparse
import sys
import time

from research.outside_sim.sets import SETS, write_set


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m research.outside_sim",
                                description="Write crops of the independent spectrometer simulator.")
    p.add_argument("out", metavar="OUT", help="directory to write part-NNNNN.parquet files into")
    p.add_argument("--kind", required=True, choices=list(SETS),
                   help="labels/fresh: SNR 5-60/6-60, straight and chirped tracks; faint: SNR 4-12; "
                        "curved: curved, wandering, wobbling tracks; archive: unlabelled, SNR 3-60")
    p.add_argument("--n", type=int, required=True, help="crops (labels alternate 0/1: even N is balanced)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.n < 1:
        p.error(f"--n must be >= 1, got {a.n}")
    if a.seed < 0:
        p.error(f"--seed must be >= 0, got {a.seed}")
    t0 = time.perf_counter()
    paths = write_set(a.out, a.kind, a.n, a.seed)
    print(f"{a.kind}: {a.n} crops, seed {a.seed} -> {a.out} ({len(paths)} file(s), "
          f"{time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
