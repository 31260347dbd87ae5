"""What a 16-trial `cropray tune` costs, before and after a change, at 50 / 200 / 1000 labels (issue 12, lever 5).

Each run is the real command line in its own process, `python -m cropray tune LABELS --out OUT --samples
16 --epochs E --seed S --json`, once with the cropray of the BEFORE tree and once with the AFTER tree
(each a git worktree; the same interpreter and packages), on the same synthetic labels. Before and
after are interleaved (the order alternates per label count) so that a machine shared with other jobs
loads both alike. Reported per run: whole-process wall time, the sweep's and the retrain's seconds (from
summary.json), trials completed / stopped early, the best trial's CV ROC-AUC and the bundle's
cross-validated ROC-AUC with its 95% bootstrap interval.

  git worktree add /tmp/before_b 450512f && git worktree add /tmp/after_b HEAD
  python benchmarks/sweep_cost.py --before /tmp/before_b --after /tmp/after_b --epochs 1 --folds 3
  python benchmarks/sweep_cost.py --before . --after . --report      # the table of the last run again
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from cropray.cli._common import fmt_table


def make_labels(work: Path, n: int, seed: int) -> Path:
    out = work / f"labels{n}"
    if not (out / "_done").exists():
        from cropray.synth import synth_archive

        synth_archive(out, n, labeled=True, seed=seed)
        (out / "_done").write_text("")
    return out


def git_head(tree: Path) -> str:
    r = subprocess.run(["git", "-C", str(tree), "log", "-1", "--format=%h %s"], capture_output=True, text=True)
    return r.stdout.strip()[:90]


def run_one(tree: Path, labels: Path, out: Path, args) -> dict:
    """One sweep with `tree`'s cropray; its summary and the whole process's wall time."""
    cmd = [sys.executable, "-m", "cropray", "tune", str(labels), "--out", str(out), "--samples", str(args.samples),
           "--epochs", str(args.epochs), "--seed", str(args.seed), "--json", "--overwrite"]
    if args.folds:
        cmd += ["--folds", str(args.folds)]
    env = {**os.environ, "PYTHONPATH": str(tree)}  # that tree's cropray, this interpreter's packages
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    (out.parent / f"{out.name}.log").write_text(r.stderr)
    if r.returncode not in (0, 1):
        return {"error": f"exit {r.returncode}: {r.stderr[-500:]}", "wall_s": wall, "command": shlex.join(cmd)}
    s = json.loads(r.stdout)
    b = s.get("bundle") or {}
    return {"wall_s": round(wall, 1), "sweep_s": s["seconds"]["sweep"], "retrain_s": s["seconds"]["retrain"],
            "completed": s["trials"]["completed"], "stopped": s["trials"]["stopped"], "failed": s["trials"]["failed"],
            "best_cv_auc": (s.get("best") or {}).get("value"), "best_arch": (s.get("best") or {}).get("config", {})
            .get("arch"), "bundle_cv_auc": b.get("cv_roc_auc"), "cv_source": b.get("cv_source", "cross-validated again"),
            "command": f"cd {tree} && PYTHONPATH={tree} {shlex.join(cmd)}"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, required=True, help="worktree of the code before")
    ap.add_argument("--after", type=Path, required=True, help="worktree of the code after")
    ap.add_argument("--labels", default="50,200,1000")
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=2, help="max epochs per trial (reduced to fit a shared machine)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--folds", type=int, default=None, help="CV folds (default: cropray's, min(5, minority))")
    ap.add_argument("--report", action="store_true", help="only print the table of an earlier run's --json-out")
    ap.add_argument("--concurrent", action="store_true",
                    help="run before and after of a label count at the same time (same load on both; faster)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/sweep_cost"))
    ap.add_argument("--json-out", type=Path, default=Path(__file__).parent / "results" / "sweep_cost.json")
    args = ap.parse_args()
    if args.report:
        report(json.loads(args.json_out.read_text()))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    doc = {"before": git_head(trees["before"]), "after": git_head(trees["after"]), "epochs": args.epochs,
           "samples": args.samples, "seed": args.seed, "folds": args.folds, "runs": []}
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    for i, n in enumerate(int(v) for v in args.labels.split(",")):
        labels = make_labels(args.work, n, seed=100 + n)
        order = ("before", "after") if i % 2 == 0 else ("after", "before")
        if args.concurrent:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(2) as pool:
                futs = {w: pool.submit(run_one, trees[w], labels, args.work / f"{w}_{n}", args) for w in order}
            done = [(w, futs[w].result()) for w in order]
        else:
            done = [(w, run_one(trees[w], labels, args.work / f"{w}_{n}", args)) for w in order]
        for which, r in done:
            r.update(labels=n, which=which, concurrent=args.concurrent)
            doc["runs"].append(r)
            print(json.dumps(r), file=sys.stderr, flush=True)
            args.json_out.write_text(json.dumps(doc, indent=2))  # a partial run still leaves its figures
    report(doc)


def report(doc: dict) -> None:
    """The table and the exact commands of a run's results document."""
    results, rows = doc["runs"], []
    for n in sorted({r["labels"] for r in results}):
        for which in ("before", "after"):
            r = next((x for x in results if x["labels"] == n and x["which"] == which), None)
            if r is None:
                continue
            if "error" in r:
                rows.append([n, which, f"{r['wall_s']:.0f}", "-", "-", "-", "-", r["error"][:60]])
                continue
            c = r["bundle_cv_auc"] or {}
            rows.append([n, which + (" (concurrent)" if r.get("concurrent") else ""), f"{r['wall_s']:.0f}", f"{r['sweep_s']:.0f}", f"{r['retrain_s']:.0f}",
                         f"{r['completed']} / {r['stopped']} / {r['failed']}",
                         f"{r['best_cv_auc']:.4f} ({r['best_arch']})",
                         f"{c.get('value', float('nan')):.4f} [{c.get('lo', float('nan')):.3f}, "
                         f"{c.get('hi', float('nan')):.3f}]"])
    print(f"before: {doc['before']}\nafter:  {doc['after']}")
    print(f"{doc['samples']} trials x <= {doc['epochs']} epochs, seed {doc['seed']}, "
          f"{doc['folds'] or 'default'} folds; wall = whole process")
    print(fmt_table(rows, ["labels", "code", "wall s", "sweep s", "retrain s", "done/stopped/failed",
                           "best CV ROC-AUC", "bundle CV ROC-AUC [95%]"]))
    print("\ncommands:")
    for r in results:
        print(f"  # {r['labels']} labels, {r['which']}\n  {r['command']}")


if __name__ == "__main__":
    main()
