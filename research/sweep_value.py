"""Does a sweep earn its cost? For each regime: a `cropray tune` sweep vs the default configuration.

For each label count (default 50 / 200 / 1000 -> few / mid / many) on a synthetic labelled archive:
  sweep    run_sweep(samples, epochs, folds): wall time, trials completed / stopped early / failed /
           not run, best cross-validated score (fold-mean ROC-AUC), and its bundle (best config refit
           on all labels);
  default  train_and_bundle(TrainConfig(arch=auto, epochs=E)) - the library defaults for the auto
           architecture at the same epoch budget, i.e. what `cropray train --epochs E` gives;
and both bundles' ROC-AUC on fresh crops from a different generator seed (default 5,000), plus the
same two configs refit with --refit-seeds other seeds (mean +- sd): at a few hundred labels one refit's
seed moves the test AUC by several hundredths, so one bundle each is a noisy comparison.

  python research/sweep_value.py --time-budget 900        # the table in the closing note (~1 h, 2 busy cores)
  python research/sweep_value.py --labels 50 --samples 8 --epochs 3 --refit-seeds 0   # one quick regime
  python research/sweep_value.py --smoke-test   # 30 labels, 2 trials of 1 epoch, 2 folds: checks that it runs
The default arm runs `cropray train` itself (a subprocess, its --json summary read back), so it measures
exactly what a user gets from that command.
The default --fixed narrows the Siamese/shallow CNN channel widths so that 16 trials per regime fit on
a shared 2-core machine (deep_cnn's width is searched in 'many'); pass --fixed '{}' for library widths.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from cropray.archive import read_labeled
from cropray.bundle import load_bundle
from cropray.models import list_models, select_arch
from cropray.synth import SynthConfig, generate, synth_archive
from cropray.train import TrainConfig, fit
from cropray.tune import TuneConfig, run_sweep

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cropray.report.table import fmt_table  # noqa: E402

NARROW = {"siamese": {"channels": [16, 32, 64]}, "shallow_cnn": {"channels": [16, 32, 64]}}


def test_auc(bundle_dir: str, x: np.ndarray, y: np.ndarray) -> float:
    b = load_bundle(bundle_dir)
    with torch.inference_mode():
        s = np.concatenate([b.model(torch.from_numpy(x[i:i + 512])).float().numpy() for i in range(0, len(x), 512)])
    return float(roc_auc_score(y, s)) if np.isfinite(s).all() else float("nan")


def refit_aucs(cfg: TrainConfig, labels: Path, epochs: int, seeds: int, x_test, y_test) -> list[float]:
    """Test ROC-AUC of the same config refit on all labels with other seeds: at a few hundred labels one
    refit's luck moves the test AUC by several hundredths, more than most hyperparameter changes."""
    ls = read_labeled(labels)
    out = []
    for seed in range(1, seeds + 1):
        m = fit(cfg.replace(seed=cfg.seed + seed), ls.x, ls.y, epochs=max(1, epochs), progress=False).model
        with torch.inference_mode():
            s = np.concatenate([m(torch.from_numpy(x_test[i:i + 512])).float().numpy()
                                for i in range(0, len(x_test), 512)])
        # A refit that diverged (NaN weights) scores NaN: counted as nan, reported, not averaged away.
        out.append(float(roc_auc_score(y_test, s)) if np.isfinite(s).all() else float("nan"))
    return out


def train_cli(labels: Path, out: Path, cfg: TrainConfig, folds: int) -> dict:
    """`cropray train LABELS --out OUT --arch A --no-compare --config CFG --folds K --json`: its summary."""
    conf = {k: v for k, v in cfg.to_dict().items() if k not in ("arch", "seed") and v is not None}
    cmd = [sys.executable, "-m", "cropray", "train", str(labels), "--out", str(out), "--arch", cfg.arch,
           "--no-compare", "--seed", str(cfg.seed), "--folds", str(folds), "--config", json.dumps(conf),
           "--overwrite", "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode not in (0, 1):  # 1: the job ran (e.g. skipped rows); 2: refused
        raise SystemExit(f"cropray train failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def one(n: int, args, x_test, y_test, work: Path) -> dict:
    labels = work / f"labels_{n}"
    if not labels.exists():
        synth_archive(labels, n, labeled=True, seed=args.seed + n)
    tcfg = TuneConfig(samples=args.samples, epochs=args.epochs, folds=args.folds, seed=args.seed,
                      time_budget_s=args.time_budget or None, cpus_per_trial=args.cpus_per_trial,
                      max_concurrent=args.max_concurrent, fixed=json.loads(args.fixed))
    t0 = time.perf_counter()
    s = run_sweep(labels, work / f"sweep_{n}", tcfg, overwrite=True, log=None)
    t_sweep = time.perf_counter() - t0
    t1 = time.perf_counter()
    # The default: library defaults for the auto architecture at the same epoch budget (and the same
    # fixed settings, e.g. the narrow widths, so only the searched hyperparameters differ).
    auto = select_arch(s["n_labels"])
    train_fixed = {k: v for k, v in tcfg.fixed.items() if k not in list_models()}
    d_cfg = TrainConfig(arch=auto, epochs=args.epochs, seed=args.seed, model_kwargs=tcfg.fixed.get(auto, {}),
                        **train_fixed)
    d = train_cli(labels, work / f"default_{n}", d_cfg, args.folds)
    t_default = time.perf_counter() - t1
    n_t = s["trials"]
    best_cfg = TrainConfig.from_dict(s["best"]["config"])
    best_aucs = [test_auc(s["bundle"]["path"], x_test, y_test)]
    best_aucs += refit_aucs(best_cfg, labels, s["bundle"]["final_epochs"], args.refit_seeds, x_test, y_test)
    default_aucs = [test_auc(d["bundle"], x_test, y_test)]
    default_aucs += refit_aucs(d_cfg, labels, d["final_epochs"], args.refit_seeds, x_test, y_test)
    return {
        "labels": n, "regime": s["regime"], "trials": n_t["total"], "completed": n_t["completed"],
        "stopped": n_t["stopped"], "failed": n_t["failed"], "not_run": n_t["not_run"],
        "sweep_s": round(t_sweep, 1), "default_s": round(t_default, 1),
        "best_arch": s["best"]["config"]["arch"], "best_cv": s["best"]["value"],
        "default_trial_cv": s["default"]["value"] if s["default"] else float("nan"),
        "default_arch": auto, "default_cv": d["cv_metrics"]["fold_auc_mean"],
        "best_bundle_cv": s["bundle"]["cv_roc_auc"]["value"], "default_bundle_cv": d["cv_metrics"]["roc_auc"]["value"],
        "best_test_auc": best_aucs[0], "default_test_auc": default_aucs[0],
        "best_test_aucs": best_aucs, "default_test_aucs": default_aucs,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--labels", default="50,200,1000", help="label counts, one sweep each")
    p.add_argument("--samples", type=int, default=16)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--time-budget", type=float, default=0, help="seconds per sweep (0 = none)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    p.add_argument("--max-concurrent", type=int, default=None)
    p.add_argument("--test-n", type=int, default=5000)
    p.add_argument("--refit-seeds", type=int, default=2,
                   help="extra refits of each final config with other seeds (test AUC spread)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fixed", default=json.dumps(NARROW), help="TuneConfig.fixed JSON (default: narrow widths)")
    p.add_argument("--work", default="/tmp/cropray_sweep_value")
    p.add_argument("--smoke-test", action="store_true",
                   help="30 labels, 2 trials x 1 epoch, 2 folds, 200 test crops, no refits (CI runs it)")
    args = p.parse_args(argv)
    if args.smoke_test:
        args.labels, args.samples, args.epochs, args.folds, args.test_n, args.refit_seeds = "30", 2, 1, 2, 200, 0
        args.fixed = json.dumps({"siamese": {"channels": [4, 8, 8]}, "shallow_cnn": {"channels": [4, 8, 8]}})
    import ray

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    b = generate(args.test_n, SynthConfig(), seed=args.seed + 99_991)  # a seed no label set uses
    x_test, y_test = b.crops[:, None].astype(np.float32), b.label.astype(np.int64)
    rows = []
    for n in map(int, args.labels.split(",")):
        r = one(n, args, x_test, y_test, work)
        rows.append(r)
        print(json.dumps(r), flush=True)
    ray.shutdown()
    print(f"\n{args.samples} trials x <= {args.epochs} epochs, {args.folds}-fold CV, fixed {args.fixed}; "
          f"test: {args.test_n} fresh crops; machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(fmt_table([[r["labels"], r["regime"], f"{r['completed']}/{r['stopped']}/{r['failed']}/{r['not_run']}",
                      r["sweep_s"], f"{r['best_cv']:.3f} ({r['best_arch']})",
                      f"{r['default_cv']:.3f} ({r['default_arch']})", r["default_s"],
                      f"{r['best_test_auc']:.3f}", f"{r['default_test_auc']:.3f}", _spread(r["best_test_aucs"]),
                      _spread(r["default_test_aucs"])] for r in rows],
                    ["labels", "regime", "done/stopped/failed/not run", "sweep s", "best CV",
                     "default CV", "default s", "best bundle test AUC", "default bundle test AUC",
                     "best over refit seeds", "default over refit seeds"]))
    return 0


def _spread(v: list[float]) -> str:
    ok = [a for a in v if np.isfinite(a)]
    bad = f", {len(v) - len(ok)} diverged" if len(ok) < len(v) else ""
    return f"{np.mean(ok):.3f} +- {np.std(ok):.3f} (n={len(ok)}{bad})" if ok else f"all {len(v)} diverged"


if __name__ == "__main__":
    raise SystemExit(main())
