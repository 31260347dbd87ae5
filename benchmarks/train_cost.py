"""Training cost before/after: default `cropray train` wall time and quality at several label counts.

    python benchmarks/train_cost.py --labels 25,50,200,1000 --before /tmp/before --work /tmp/tc
    python benchmarks/train_cost.py --work /tmp/tc --table          # the table from what has run so far

`--before` is a checkout of the old code (`git worktree add /tmp/before 450512f`); it runs with this
venv's interpreter from that directory (`python -m cropray` imports the checkout it is started in).
For each label count the sides run interleaved (before, after, before, ...), on the same labels and
seed, so the shared machine's load hits both alike; each run records the 1-minute load average.
Labels: `cropray synth --labeled --seed 1`; each bundle is then evaluated (`cropray eval`) on 2,000
fresh crops of the same generator (seed 99) and on 2,000 of the shifted generator mix of
benchmarks/shift_quality.py (SNR 6-60, seed 98). One JSON line per run goes to WORK/runs.jsonl, so a
run cut short keeps what finished; `--table` prints medians per (n, side) and the after/before ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "")
    except OSError:
        model = platform.processor()
    return f"{model}, {os.cpu_count()} CPUs"


def make_sets(work: Path, ns: list[int]) -> None:
    """Labels per n (seed 1), a same-generator test set and a shifted one (written once)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from shift_quality import shifted

    from cropray.archive import write_archive
    from cropray.synth import generate, synth_archive

    for n in ns:
        if not (work / f"labels_{n}").exists():
            synth_archive(work / f"labels_{n}", n, labeled=True, seed=1)
    if not (work / "test").exists():
        synth_archive(work / "test", 2000, labeled=True, seed=99)
    if not (work / "test_shift").exists():
        b = generate(2000, shifted((6.0, 60.0)), seed=98)
        write_archive(work / "test_shift" / "part-0.parquet",
                      {"crop_id": np.arange(len(b)).astype(np.int64), "label": b.label.astype(np.int64),
                       "snr": b.snr}, b.crops)


def _cropray(root: Path, args: list[str]) -> tuple[dict, float, float]:
    """(--json output, wall seconds, CPU seconds user+sys of the child: robust to a shared machine)."""
    t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run([sys.executable, "-m", "cropray", *args, "--json"], cwd=root, capture_output=True, text=True)
    wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if p.returncode not in (0, 1):
        raise RuntimeError(f"cropray {' '.join(args)} in {root}: exit {p.returncode}\n{p.stderr[-2000:]}")
    return json.loads(p.stdout), wall, cpu


def fold_epochs(bundle: Path) -> dict:
    """Epochs each CV fold of the bundled model trained, from its manifest (load-independent cost):
    a fold stops at min(cap, best epoch + patience), or when lockstep CV stopped (epochs_run)."""
    ts = json.loads((bundle / "manifest.json").read_text())["train_summary"]
    c, cv = ts["config"], ts["cv"]
    stop = cv.get("epochs_run") or c["epochs"]
    per_fold = [min(stop, c["epochs"], be + c["patience"]) for be in cv["best_epochs"]]
    return {"fold_epochs": int(sum(per_fold)), "cap": c["epochs"], "refit_epochs": ts["final_epochs"]}


def run_one(work: Path, side: str, root: Path, n: int, seed: int, rep: int) -> dict:
    out = work / f"{side}_{n}_r{rep}"
    load0 = os.getloadavg()[0]
    s, wall, cpu = _cropray(root, ["train", str(work / f"labels_{n}"), "--out", str(out), "--seed", str(seed),
                              "--overwrite"])
    row = {"n": n, "side": side, "rep": rep, "seed": seed, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "load1_start": load0,
           "load1_end": os.getloadavg()[0], "arch": s["arch"], "cv_auc": s["cv_metrics"]["roc_auc"],
           "final_epochs": s["final_epochs"], "compared": [c["arch"] for c in (s.get("auto_comparison") or {})
                                                           .get("candidates", [])],
           "time": time.strftime("%H:%M:%S")}
    row.update(fold_epochs(out))
    for test in ("test", "test_shift"):
        e, _, _ = _cropray(root, ["eval", str(out), str(work / test)])
        row[f"{test}_auc"] = e["metrics"]["roc_auc"]
    with open(work / "runs.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)
    return row


def _ci(m: dict) -> str:
    return f"{m['value']:.3f} [{m['lo']:.3f}, {m['hi']:.3f}]"


def table(work: Path) -> str:
    rows = [json.loads(ln) for ln in open(work / "runs.jsonl")]
    lines = [f"CPU: {_cpu()}",
             "| labels | side | arch | wall s (median, runs) | CPU s | load1 | fold-epochs (+refit) | CV ROC-AUC [95%] "
             "| test ROC-AUC | shifted ROC-AUC |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    walls: dict = {}
    for n in sorted({r["n"] for r in rows}):
        for side in ("before", "after"):
            rs = [r for r in rows if r["n"] == n and r["side"] == side]
            if not rs:
                continue
            w = float(np.median([r["wall_s"] for r in rs]))
            walls[(n, side)] = w
            last = rs[-1]
            arch = last["arch"] + (f" (of {', '.join(last['compared'])})" if last["compared"] else "")
            cpu = np.median([r.get("cpu_s", np.nan) for r in rs])
            fe = f"{last['fold_epochs']} (+{last['refit_epochs']})" if "fold_epochs" in last else "-"
            lines.append(f"| {n} | {side} | {arch} | {w:.0f} ({len(rs)}) | {cpu:.0f} | "
                         f"{np.median([r['load1_start'] for r in rs]):.1f} | {fe} | {_ci(last['cv_auc'])} | "
                         f"{_ci(last['test_auc'])} | {_ci(last['test_shift_auc'])} |")
        if (n, "before") in walls and (n, "after") in walls:
            lines.append(f"| {n} | after/before | | {walls[(n, 'after')] / walls[(n, 'before')]:.2f} | | | | | | |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", default="25,50,200,1000")
    ap.add_argument("--work", default="/tmp/train_cost")
    ap.add_argument("--before", default=None, help="checkout of the old code (git worktree)")
    ap.add_argument("--sides", default="before,after", help="which sides to run, in interleaving order")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--table", action="store_true", help="only print the table of WORK/runs.jsonl")
    a = ap.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    if not a.table:
        ns = [int(v) for v in a.labels.split(",")]
        make_sets(work, ns)
        roots = {"before": Path(a.before) if a.before else None, "after": ROOT}
        for n in ns:
            for rep in range(a.repeats):
                for side in a.sides.split(","):
                    if roots[side] is None:
                        raise SystemExit("--before DIR is needed to run the 'before' side")
                    run_one(work, side, roots[side], n, a.seed, rep)
    print(table(work))


if __name__ == "__main__":
    main()
