"""Where does `cropray score`'s time go? One actor's work stage by stage, then the real pipeline.

1. In one process at the actor's thread count (1 on a 2-CPU machine), on 8,192 rows of the archive
   as Arrow batches of --batch-size: `validate_decode` (Arrow -> float32 (B,1,H,W)), the fast path's
   numpy RobustNorm, the network alone, the whole scorer, and `ScoreBatch.__call__` (decode + score +
   output table), each in crops/s (median of 3).
2. The scorer build: which path `auto` chose, what it tried and rejected, and how long it took.
3. `score_archive` through Ray Data on the embedded cluster: wall, seconds until the first results
   reach the driver (actor start-up), steady crops/s after that, and the steady rate over the
   actors' combined in-process rate (what Ray Data + the commit protocol cost once running).

  python benchmarks/profile_score.py                       # 40,000 crops, shallow_cnn bundle
  python benchmarks/profile_score.py --n 100000 --arch deep_cnn
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch


def rate(fn, n: int, repeats: int = 3) -> float:
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return n / float(np.median(ts))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=40_000, help="crops in the archive (default 40000)")
    p.add_argument("--files", type=int, default=4)
    p.add_argument("--arch", default="shallow_cnn")
    p.add_argument("--threads", type=int, default=1, help="torch threads per actor (default 1, as on 2 CPUs)")
    p.add_argument("--batch-size", type=int, default=1024, help="rows per actor call (ScoreConfig default)")
    p.add_argument("--workdir", default=None)
    p.add_argument("--out", default=None, help="also write the figures as JSON here")
    args = p.parse_args(argv)

    from cropray.archive import resolve_archive, validate_decode
    from cropray.bench.trained import train_briefly
    from cropray.bundle import load_bundle, save_bundle
    from cropray.fastpath.preprocess import robust_norm_numpy
    from cropray.scoring.config import ScoreConfig
    from cropray.scoring.pipeline import score_archive
    from cropray.scoring.plan import plan_archive
    from cropray.scoring.scorer import ScoreBatch
    from cropray.synth import synth_archive

    work = Path(args.workdir or tempfile.mkdtemp(prefix="cropray-profile-"))
    arch_dir = work / "archive"
    if not arch_dir.exists():
        synth_archive(arch_dir, args.n, files=args.files, seed=3)
    tm = train_briefly(args.arch, seconds=float("inf"), max_steps=200, n_train=2048, seed=0)
    bundle_dir = save_bundle(tm.model, work / "bundle", threshold=tm.threshold, overwrite=True,
                             train_summary={"note": "profile_score: briefly trained"}, metrics={},
                             calibration_crops=tm.calibration_crops)
    out: dict = {"n": args.n, "arch": args.arch, "threads": args.threads, "batch_size": args.batch_size}

    # 1-2. One actor's work, in this process.
    torch.set_num_threads(args.threads)
    files = resolve_archive(str(arch_dir))
    plan = plan_archive(files, model_shape=(64, 64), keep=(), unit_rows=262_144)
    spec = next(iter(plan.specs.values()))
    t = pq.read_table(files.paths[0]).slice(0, 8192)
    n = t.num_rows
    t = (t.append_column("_unit", pa.array(np.zeros(n, np.int32)))
          .append_column("_row", pa.array(np.arange(n, dtype=np.int64)))
          .append_column("_error", pa.nulls(n, pa.string())))
    batches = [t.slice(i, args.batch_size) for i in range(0, n, args.batch_size)]
    t0 = time.perf_counter()
    sb = ScoreBatch(str(bundle_dir), spec, threads=args.threads, expected_rows=args.n // 2)
    out["build_s"] = round(time.perf_counter() - t0, 2)
    d = sb.describe()
    out["path"], out["fallbacks"], out["skipped"] = d["path"], d["fallbacks"], d["skipped"]
    xs = [validate_decode(b, spec)[0] for b in batches]
    bundle = load_bundle(bundle_dir)
    pre_kw = {k: bundle.model.hparams[k] for k in ("flatten", "flatten_window", "row_center", "compress")}
    sb(batches[0])  # warm
    with torch.inference_mode():
        stages = {
            "decode (validate_decode)": rate(lambda: [validate_decode(b, spec) for b in batches], n),
            "preprocess (numpy RobustNorm)": rate(lambda: [robust_norm_numpy(x, **pre_kw) for x in xs], n),
            "scorer (preprocess + network)": rate(lambda: [sb.scorer(x) for x in xs], n),
            "ScoreBatch (decode + score + output table)": rate(lambda: [sb(b) for b in batches], n),
        }
    # the network's share, derived: 1/scorer = 1/preprocess + 1/network
    inv = 1 / stages["scorer (preprocess + network)"] - 1 / stages["preprocess (numpy RobustNorm)"]
    stages["network (derived: scorer - preprocess)"] = 1 / inv if inv > 0 else None
    out["stages_crops_per_s"] = {k: (round(v) if v else None) for k, v in stages.items()}

    # 3. The real pipeline.
    cfg = ScoreConfig(bundle=str(bundle_dir), input=str(arch_dir), output=str(work / "scores"), overwrite=True)
    t0 = time.perf_counter()
    s = score_archive(cfg)
    out["e2e"] = {"wall_s": round(time.perf_counter() - t0, 1), "scoring_s": None,
                  "first_block_s": s.get("first_block_s"), "steady_crops_per_s": s.get("steady_crops_per_s"),
                  "crops_per_s": s.get("crops_per_s"), "actors": len(s.get("actors") or []),
                  "paths": sorted({a.get("path") for a in s.get("actors") or []}), "pool": s.get("pool")}
    per_actor = stages["ScoreBatch (decode + score + output table)"]
    n_act = max(1, out["e2e"]["actors"])
    if s.get("steady_crops_per_s"):
        out["steady_over_actors_in_process"] = round(s["steady_crops_per_s"] / (n_act * per_actor), 3)

    print(f"archive {args.n:,} crops ({args.files} files, float32), {args.arch}, {args.threads} thread(s)/actor, "
          f"batch {args.batch_size}")
    print(f"scorer build (auto): {out['build_s']} s -> {out['path']}; rejected: "
          + (", ".join(f["path"] for f in out["fallbacks"]) or "none")
          + "; skipped: " + (", ".join(k["path"] for k in out["skipped"]) or "none"))
    print("one actor's work, in-process (crops/s):")
    for k, v in out["stages_crops_per_s"].items():
        print(f"  {k:45s} {v if v is not None else '-':>10}")
    e = out["e2e"]
    print(f"cropray score: {e['wall_s']} s wall, first results after {e['first_block_s']} s, then "
          f"{e['steady_crops_per_s']} crops/s steady ({e['actors']} actors, {e['paths']}); overall "
          f"{e['crops_per_s']} crops/s")
    if "steady_over_actors_in_process" in out:
        print(f"steady / ({n_act} x one actor's in-process ScoreBatch rate) = {out['steady_over_actors_in_process']}")
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
