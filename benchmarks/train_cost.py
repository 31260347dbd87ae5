"""Training cost before/after: default `cropray train` wall time and quality at several label counts.

    python benchmarks/train_cost.py --labels 25,50,200,1000 --before /tmp/before --work /tmp/tc
    python benchmarks/train_cost.py --work /tmp/tc --table          # the table from what has run so far
    python benchmarks/train_cost.py --labels 200 --before /tmp/before --work /tmp/tc --pinned   # idle pairs
    python benchmarks/train_cost.py --labels 200 --sides after --variant no-compare --train-args=--no-compare \
        --work /tmp/tc --pinned                                      # one architecture, as before

`--before` is a checkout of the old code (`git worktree add /tmp/before 450512f`); it runs with this
venv's interpreter from that directory (`python -m cropray` imports the checkout it is started in).
For each label count the sides run interleaved (before, after, before, ...), on the same labels and
seed, so the shared machine's load hits both alike; each run records the 1-minute load average.
Labels: `cropray synth --labeled --seed 1`; each bundle is then evaluated (`cropray eval`) on 2,000
fresh crops of the same generator (seed 99) and on 2,000 of the shifted generator mix of
benchmarks/shift_quality.py (SNR 6-60, seed 98). One JSON line per run goes to WORK/runs.jsonl, so a
run cut short keeps what finished; `--table` prints medians per (n, side, variant) and the after/before
ratio of the default variants.

`--pinned`: the sides of one label count run at the same time, side i on CPU i (`taskset`) with one
torch thread (OMP_NUM_THREADS=1), so on an idle 2-CPU machine each has one core to itself and neither
pays for the other; CPU seconds (user + sys of the child) are recorded beside the wall.
`--variant NAME --train-args=...`: extra `cropray train` flags for this run, kept in each row under
that name (e.g. `--no-compare`: the regime's one architecture, the same work as the old default).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
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


def _cropray(root: Path, args: list[str], cpu_core: int | None = None) -> tuple[dict, float, float]:
    """(--json output, wall seconds, CPU seconds user+sys of this child alone: robust to a shared
    machine and to runs side by side). `cpu_core`: pinned to that CPU with one torch thread."""
    cmd, env = [sys.executable, "-m", "cropray", *args, "--json"], None
    if cpu_core is not None:
        cmd = ["taskset", "-c", str(cpu_core), *cmd]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=err, text=True)
        _, status, ru = os.wait4(p.pid, 0)  # this child's own rusage (RUSAGE_CHILDREN mixes concurrent runs)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if p.returncode not in (0, 1):
        raise RuntimeError(f"cropray {' '.join(args)} in {root}: exit {p.returncode}\n{stderr[-2000:]}")
    return json.loads(stdout), wall, ru.ru_utime + ru.ru_stime


def fold_epochs(bundle: Path) -> dict:
    """Epochs each CV fold of the bundled model trained, from its manifest (load-independent cost):
    a fold stops at min(cap, best epoch + patience), or when lockstep CV stopped (epochs_run)."""
    ts = json.loads((bundle / "manifest.json").read_text())["train_summary"]
    c, cv = ts["config"], ts["cv"]
    stop = cv.get("epochs_run") or c["epochs"]
    per_fold = [min(stop, c["epochs"], be + c["patience"]) for be in cv["best_epochs"]]
    return {"fold_epochs": int(sum(per_fold)), "cap": c["epochs"], "refit_epochs": ts["final_epochs"]}


def run_one(work: Path, side: str, root: Path, n: int, seed: int, rep: int, *, variant: str = "default",
            train_args: tuple = (), cpu_core: int | None = None) -> dict:
    out = work / f"{side}_{n}_r{rep}" if variant == "default" else work / f"{side}_{n}_{variant}_r{rep}"
    load0 = os.getloadavg()[0]
    s, wall, cpu = _cropray(root, ["train", str(work / f"labels_{n}"), "--out", str(out), "--seed", str(seed),
                                   "--overwrite", *train_args], cpu_core)
    row = {"n": n, "side": side, "variant": variant, "rep": rep, "seed": seed, "wall_s": round(wall, 1),
           "cpu_s": round(cpu, 1), "load1_start": load0, "load1_end": os.getloadavg()[0],
           "pinned_cpu": cpu_core, "arch": s["arch"], "cv_auc": s["cv_metrics"]["roc_auc"],
           "final_epochs": s["final_epochs"],
           "compared": [c["arch"] for c in (s.get("auto_comparison") or {}).get("candidates", [])],
           "time": time.strftime("%H:%M:%S")}
    row.update(fold_epochs(out))
    for test in ("test", "test_shift"):
        e, _, _ = _cropray(root, ["eval", str(out), str(work / test)], cpu_core)
        row[f"{test}_auc"] = e["metrics"]["roc_auc"]
    with _ROWS_LOCK, open(work / "runs.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)
    return row


_ROWS_LOCK = threading.Lock()  # --pinned: sides finish in any order from their own threads


def _num(v) -> float:
    return np.nan if v is None else float(v)  # rows adopted from a pinned run may lack a load figure


def _ci(m: dict) -> str:
    return f"{m['value']:.3f} [{m['lo']:.3f}, {m['hi']:.3f}]"


def table(work: Path) -> str:
    rows = [json.loads(ln) for ln in open(work / "runs.jsonl")]
    lines = [f"CPU: {_cpu()}",
             "| labels | side | arch | wall s (median, runs) | CPU s | load1 | fold-epochs (+refit) | CV ROC-AUC [95%] "
             "| test ROC-AUC | shifted ROC-AUC |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    walls: dict = {}
    variants = list(dict.fromkeys(r.get("variant", "default") for r in rows))
    for n in sorted({r["n"] for r in rows}):
        for side, variant in [(s, v) for s in ("before", "after") for v in variants]:
            rs = [r for r in rows if r["n"] == n and r["side"] == side and r.get("variant", "default") == variant]
            if not rs:
                continue
            w = float(np.median([r["wall_s"] for r in rs]))
            walls[(n, side, variant)] = w
            last = rs[-1]
            arch = last["arch"] + (f" (of {', '.join(last['compared'])})" if last["compared"] else "")
            cpu = np.median([_num(r.get("cpu_s")) for r in rs])
            fe = f"{last['fold_epochs']} (+{last['refit_epochs']})" if "fold_epochs" in last else "-"
            label = side if variant == "default" else f"{side}, {variant}"
            lines.append(f"| {n} | {label} | {arch} | {w:.0f} ({len(rs)}) | {cpu:.0f} | "
                         f"{np.median([_num(r.get('load1_start')) for r in rs]):.1f} | {fe} | {_ci(last['cv_auc'])} | "
                         f"{_ci(last['test_auc'])} | {_ci(last['test_shift_auc'])} |")
        for (m, side, variant), w in walls.items():
            if m == n and side == "after" and (n, "before", "default") in walls:
                lines.append(f"| {n} | after{'' if variant == 'default' else ', ' + variant} / before | | "
                             f"{w / walls[(n, 'before', 'default')]:.2f} | | | | | | |")
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
    ap.add_argument("--pinned", action="store_true",
                    help="run the sides of a label count at once, side i on CPU i with one torch thread")
    ap.add_argument("--variant", default="default", help="a name for --train-args, kept in each row")
    ap.add_argument("--train-args", default="", help="extra `cropray train` flags (e.g. --train-args=--no-compare)")
    a = ap.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    if not a.table:
        ns = [int(v) for v in a.labels.split(",")]
        make_sets(work, ns)
        roots = {"before": Path(a.before) if a.before else None, "after": ROOT}
        sides = a.sides.split(",")
        if any(roots[side] is None for side in sides):
            raise SystemExit("--before DIR is needed to run the 'before' side")
        kw = {"variant": a.variant, "train_args": tuple(a.train_args.split())}
        for n in ns:
            for rep in range(a.repeats):
                if a.pinned:  # one thread per side, each on its own CPU, at the same time
                    ts = [threading.Thread(target=run_one, args=(work, side, roots[side], n, a.seed, rep),
                                           kwargs={**kw, "cpu_core": i % (os.cpu_count() or 1)})
                          for i, side in enumerate(sides)]
                    [t.start() for t in ts]
                    [t.join() for t in ts]
                else:
                    for side in sides:
                        run_one(work, side, roots[side], n, a.seed, rep, **kw)
    print(table(work))


if __name__ == "__main__":
    main()
