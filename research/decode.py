"""Decode throughput: Parquet file -> validated contiguous (N, 1, 64, 64) float32, per encoding.

    python research/decode.py --n 20000 --repeats 5
    python research/decode.py --smoke-test      # 500 crops, 1 repeat: checks that it runs

Prints crops/s and GB/s (of float32 output) for each storage encoding, median of repeats, warm cache,
plus the naive pandas.read_parquet + np.stack path for comparison.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cropray.archive import crop_spec_from_schema, validate_decode, write_archive


def _time(fn, repeats):
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        n = fn()
        ts.append(time.perf_counter() - t0)
    return n, statistics.median(ts)


def _decode_file(path):
    pf = pq.ParquetFile(path)
    spec = crop_spec_from_schema(pf.schema_arrow, source=str(path))
    n = 0
    for rb in pf.iter_batches(batch_size=8192):
        x, check = validate_decode(rb, spec)
        n += len(x)
    return n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--smoke-test", action="store_true", help="500 crops, one repeat (seconds; CI runs it)")
    args = ap.parse_args(argv)
    if args.smoke_test:
        args.n, args.repeats = 500, 1
    rng = np.random.default_rng(0)
    crops = (rng.chisquare(4, (args.n, 64, 64)) * 10.0 ** rng.uniform(-2, 4, (args.n, 1, 1))).astype(np.float32)
    ids = np.arange(args.n, dtype=np.int64)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        for dtype in ("float32", "uint8", "uint16", "float16"):
            write_archive(d / dtype, {"crop_id": ids}, crops, dtype=dtype)
            f = d / dtype / "part-00000.parquet"
            n, t = _time(lambda f=f: _decode_file(f), args.repeats)
            rows.append((f"fixed_shape_tensor<{dtype}>", n / t, n * 64 * 64 * 4 / t / 1e9))
        # Variable-length list<float32>: the gather path.
        vl = pa.table({"crop_id": ids, "crop": pa.ListArray.from_arrays(
            pa.array(np.arange(0, (args.n + 1) * 4096, 4096, dtype=np.int32)), pa.array(crops.ravel()))})
        pq.write_table(vl, d / "list.parquet", compression=None, use_dictionary=False)
        n, t = _time(lambda: _decode_file(d / "list.parquet"), args.repeats)
        rows.append(("list<float32>", n / t, n * 64 * 64 * 4 / t / 1e9))
        f32 = d / "float32" / "part-00000.parquet"

        def naive():
            df = pd.read_parquet(f32)
            x = np.stack([np.asarray(v, np.float32).reshape(1, 64, 64) for v in df["crop"]])
            return len(x)

        n, t = _time(naive, max(1, args.repeats // 2))
        rows.append(("naive pandas + np.stack (float32)", n / t, n * 64 * 64 * 4 / t / 1e9))
    print(f"decode benchmark, {args.n} crops 64x64, median of {args.repeats}, warm cache")
    print(f"{'encoding':40s} {'crops/s':>10s} {'GB/s out':>9s} {'vs naive':>9s}")
    base = rows[-1][1]
    for name, cps, gbs in rows:
        print(f"{name:40s} {cps:10,.0f} {gbs:9.2f} {cps / base:8.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
