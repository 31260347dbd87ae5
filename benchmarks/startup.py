"""Whole-process `cropray score` vs a naive script, start-up included (issue 12, lever 4).

What the outside check measured: the wall time of the whole process, from exec to exit, on an archive
the machine has never scored. Here, in one run, per archive size:

- `cropray score` (defaults) with a **cold** cache (a fresh $CROPRAY_CACHE_DIR: no probe figures, no
  kept ONNX graph, no warm-start entry) and then **warm** (the same cache, second run);
- the naive script: `pandas.read_parquet`, `np.stack`, eager fp32 batch 32 under `torch.no_grad`, the
  same bundle's model through `cropray.bundle.load_bundle`, pandas out -- imports included;
- ratios, first-rows latency, and where cropray's start-up went (its `CROPRAY_TRACE` lines: imports,
  planning, ray.init, Ray Data until an actor runs our code, the actor's torch import, bundle load and
  path build, its first batch, the first block at the driver, the commit, the exit).

  python benchmarks/startup.py                           # 2,000 and 20,000 crops, shallow_cnn
  python benchmarks/startup.py --sizes 2000 --repeats 3 --json startup.json

The OS page cache is not dropped (a shared machine): "cold" is cropray's own cache, the archive and
the Python packages are read from memory after the first run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NAIVE = r"""
import sys, time
import numpy as np, pandas as pd, torch
from cropray.bundle import load_bundle
bundle, archive, out = sys.argv[1:4]
b = load_bundle(bundle)
model, thr = b.model.eval(), b.threshold
df = pd.read_parquet(archive)
x = np.stack(df["crop"].to_numpy()).reshape(len(df), 1, 64, 64).astype(np.float32)
t_first = None
scores = []
with torch.no_grad():
    for i in range(0, len(x), 32):
        scores.append(model(torch.from_numpy(x[i:i + 32])).numpy())
        if t_first is None:
            t_first = time.time()
s = np.concatenate(scores)
pd.DataFrame({"crop_id": df["crop_id"], "score": s, "is_signal": s >= thr}).to_parquet(out)
print(t_first)
"""


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_line() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        kv = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        return f"{kv.get('Model name', '?').strip()}, {kv.get('CPU(s)', '?').strip()} CPUs"
    except (OSError, subprocess.CalledProcessError):
        return "?"


def run_cropray(bundle: Path, archive: Path, out: Path, cache: Path, trace: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    trace.unlink(missing_ok=True)
    env = {**os.environ, "CROPRAY_CACHE_DIR": str(cache), "CROPRAY_TRACE": str(trace)}
    load0 = load_average()
    t0 = time.time()
    p = subprocess.run([sys.executable, "-m", "cropray", "score", str(bundle), str(archive), str(out), "--json"],
                       env=env, capture_output=True, text=True)
    t1 = time.time()
    if p.returncode != 0:
        raise SystemExit(f"cropray score failed ({p.returncode}): {p.stderr[-2000:]}")
    summary = json.loads(p.stdout)
    return {"wall_s": t1 - t0, "load": f"{load0} -> {load_average()}", "rows": summary.get("rows_scored"),
            "summary_first_block_s": summary.get("first_block_s"), **breakdown(trace, t0, t1)}


def breakdown(trace: Path, t0: float, t1: float) -> dict:
    """Seconds from process start (t0) to each stage, from the CROPRAY_TRACE lines."""
    try:
        from cropray.scoring.trace import read
    except ImportError:  # a cropray from before the trace (PYTHONPATH=an older checkout): wall times only
        return {}
    recs = read(trace)
    drv = {r["stage"]: r["t"] - t0 for r in recs if r["who"] == "driver"}
    actors: dict[int, dict] = {}
    for r in recs:
        if r["who"] in ("actor", "proc") and r["pid"] != next((x["pid"] for x in recs if x["who"] == "driver"), None):
            a = actors.setdefault(r["pid"], {})
            a[r["stage"]] = r["t"] - t0
            if r.get("proc_start"):
                a["proc_start"] = r["proc_start"] - t0
            if r["stage"] == "scorer_built":
                a["warm"] = bool((r.get("warm") or {}).get("used"))
                a["path"] = r.get("path")
    # the actor whose first batch finished first: the one that produced the first rows
    first = min(actors.values(), key=lambda a: a.get("first_call_done", 1e9), default={})
    g = first.get
    out = {
        "cli_imports_s": drv.get("pipeline_imported"),
        "plan_s": _d(drv.get("ray_init_start"), drv.get("pipeline_imported")),
        "ray_init_s": _d(drv.get("ray_init_done"), drv.get("ray_init_start")),
        "data_to_actor_s": _d(g("actor_init"), drv.get("iter_start")),
        "actor_boot_s": _d(g("scorer_module_imported"), g("proc_start")),
        "actor_torch_s": _d(g("torch_imported"), g("actor_init")),
        "actor_build_s": _d(g("scorer_built"), g("bundle_loaded") or g("actor_init")),
        "actor_wait_batch_s": _d(g("first_call"), g("scorer_built")),
        "actor_first_batch_s": _d(g("first_call_done"), g("first_call")),
        "actor_init_to_first_rows_s": _d(g("first_call_done"), g("actor_init")),
        "first_block_s": drv.get("first_block"),
        "first_commit_s": drv.get("unit_committed"),
        "exit_s": _d(t1 - t0, drv.get("cli_done")),
        "warm_actors": sum(bool(a.get("warm")) for a in actors.values()), "actors": len(actors),
        "paths": sorted({a.get("path") for a in actors.values() if a.get("path")}),
    }
    return out


def _d(a, b):
    return None if a is None or b is None else a - b


def run_naive(bundle: Path, archive: Path, out: Path) -> dict:
    load0 = load_average()
    t0 = time.time()
    p = subprocess.run([sys.executable, "-c", NAIVE, str(bundle), str(archive), str(out)], capture_output=True,
                       text=True)
    t1 = time.time()
    if p.returncode != 0:
        raise SystemExit(f"naive script failed: {p.stderr[-2000:]}")
    first = float(p.stdout.strip().splitlines()[-1])
    return {"wall_s": t1 - t0, "first_rows_s": first - t0, "load": f"{load0} -> {load_average()}"}


def med(runs: list[dict], key: str):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, nd=1) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="2000,20000", help="archive sizes in crops (default 2000,20000)")
    p.add_argument("--repeats", type=int, default=1, help="runs per mode and size; medians reported (default 1)")
    p.add_argument("--arch", default="shallow_cnn")
    p.add_argument("--bundle", default=None, help="an existing bundle (default: train one briefly)")
    p.add_argument("--workdir", default=None, help="archives, bundle, outputs (default: a temporary folder)")
    p.add_argument("--no-naive", action="store_true", help="skip the naive script")
    p.add_argument("--json", default=None, help="also write every run's figures here")
    args = p.parse_args(argv)

    from cropray.synth import synth_archive

    work = Path(args.workdir or tempfile.mkdtemp(prefix="cropray-startup-"))
    work.mkdir(parents=True, exist_ok=True)
    bundle = Path(args.bundle) if args.bundle else work / "bundle"
    if not args.bundle and not (bundle / "manifest.json").exists():
        from cropray.bench.trained import train_briefly
        from cropray.bundle import save_bundle

        tm = train_briefly(args.arch, seconds=float("inf"), max_steps=200, n_train=2048, seed=0)
        save_bundle(tm.model, bundle, threshold=tm.threshold, overwrite=True, metrics={},
                    train_summary={"note": "benchmarks/startup.py: briefly trained"},
                    calibration_crops=tm.calibration_crops)
    print(f"CPU: {cpu_line()}; load average {load_average()}; bundle {bundle}", flush=True)
    results: dict = {"cpu": cpu_line(), "sizes": {}}
    for n in [int(s) for s in args.sizes.split(",")]:
        arch = work / f"archive-{n}"
        if not arch.exists():
            synth_archive(arch, n, seed=7)
        runs: dict[str, list] = {"cold": [], "warm": [], "naive": []}
        for r in range(args.repeats):
            cache = work / f"cache-{n}-{r}"
            shutil.rmtree(cache, ignore_errors=True)
            for mode in ("cold", "warm"):
                runs[mode].append(run_cropray(bundle, arch, work / "out", cache, work / "trace.jsonl"))
                print(f"  {n:,} {mode}: {runs[mode][-1]['wall_s']:.1f} s (load {runs[mode][-1]['load']})", flush=True)
            if not args.no_naive:
                runs["naive"].append(run_naive(bundle, arch, work / "naive.parquet"))
                print(f"  {n:,} naive: {runs['naive'][-1]['wall_s']:.1f} s (load {runs['naive'][-1]['load']})",
                      flush=True)
        results["sizes"][n] = runs
        report(n, runs)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return 0


def report(n: int, runs: dict) -> None:
    naive = med(runs["naive"], "wall_s")
    print(f"\n{n:,} crops (medians of {len(runs['cold'])} run(s) each)")
    print("| run | wall s | naive / run | first rows s | first commit s | first results after Ray start s |")
    print("|---|---|---|---|---|---|")
    for mode in ("cold", "warm"):
        w = med(runs[mode], "wall_s")
        ratio = f"{naive / w:.2f}x" if naive and w else "-"
        print(f"| cropray score, {mode} cache | {fmt(w)} | {ratio} | {fmt(med(runs[mode], 'first_block_s'))} | "
              f"{fmt(med(runs[mode], 'first_commit_s'))} | {fmt(med(runs[mode], 'summary_first_block_s'))} |")
    if runs["naive"]:
        print(f"| naive script | {fmt(naive)} | 1.00x | {fmt(med(runs['naive'], 'first_rows_s'))} | - | - |")
    print("\nstart-up breakdown, seconds (cold / warm):")
    for key, label in (("cli_imports_s", "process start -> pipeline imported"), ("plan_s", "footers, plan, output"),
                       ("ray_init_s", "ray.init (embedded, loopback + token)"),
                       ("data_to_actor_s", "Ray Data start -> actor runs our code"),
                       ("actor_boot_s", "  actor process start -> our module imported"),
                       ("actor_torch_s", "  actor: torch import (- = warm start: none)"),
                       ("actor_build_s", "  actor: bundle check + path build"),
                       ("actor_wait_batch_s", "  actor: waiting for its first batch"),
                       ("actor_first_batch_s", "  actor: first batch (decode + score)"),
                       ("actor_init_to_first_rows_s", "  actor start -> first scored rows"),
                       ("exit_s", "summary printed -> process exit")):
        print(f"  {label:48s} {fmt(med(runs['cold'], key), 2):>7} / {fmt(med(runs['warm'], key), 2):>7}")
    w = runs["warm"][-1] if runs["warm"] else {}
    print(f"  warm-started actors: {w.get('warm_actors')} of {w.get('actors')}; paths {w.get('paths')}")


if __name__ == "__main__":
    raise SystemExit(main())
