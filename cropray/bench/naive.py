"""The naive script a user writes first, as a command: `python -m cropray.bench.naive MODEL INPUT OUT`.

pandas.read_parquet + np.stack + the bundle's eager fp32 model in batches of 32 + pandas out: the
baseline `cropray bench` measures in-process (e2e.naive_baseline), runnable as its own process so that
its whole-process wall time (imports included) compares with `cropray score`'s on the same archive.
"""

from __future__ import annotations

import argparse
import json
import time

T0 = time.perf_counter()  # before the heavy imports: they are part of the script's cost


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m cropray.bench.naive", description=__doc__.splitlines()[0])
    p.add_argument("model", help="model bundle directory")
    p.add_argument("input", help="Parquet file or directory of the archive")
    p.add_argument("output", help="scores Parquet file to write")
    args = p.parse_args(argv)

    from cropray.bench.e2e import naive_baseline
    from cropray.bundle import load_bundle

    b = load_bundle(args.model)
    model = b.model.eval()
    res = naive_baseline(args.input, model, float(b.threshold), args.output)
    res["process_s"] = round(time.perf_counter() - T0, 3)  # imports + bundle load + the loop
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
