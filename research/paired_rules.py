"""Which paired rule, and how strong an anchor: the paired ROC-AUC gain over physics taken on pooled
out-of-fold scores (what `cropray train` ships) or within each fold (measured and dropped), per
`anchor_l2`, on crops of the independent outside simulator (research/outside_sim).

    python research/paired_rules.py --work /tmp/qt --runs 50:shallow_cnn:0.5,50:shallow_cnn:0.05,\\
        200:shallow_cnn:0.5,200:shallow_cnn:0.05,1000:deep_cnn:0.05 --jsonl /tmp/paired_rules.jsonl
    python research/paired_rules.py --smoke-test   # 26 labels, 60 fresh crops, 1 epoch: checks that it runs

Each run LABELS:ARCH:ANCHOR_L2 cross-validates ARCH (the config's defaults, seed 0, `anchor_l2` as
given; `off` = `anchor: false`) on the first LABELS rows of the outside simulator's labels set (seed 1,
as research/quality_table.py), refits on all of them for the folds' median best epoch, and scores the
fresh set (seed 2). It reports the CV ROC-AUC pooled and per-fold mean, the fresh ROC-AUC of the model
and of `dedoppler`, and the paired gain over `dedoppler` on the out-of-fold crops by both rules, with
their 95% stratified bootstrap intervals (2,000 replicates, seeded):

  pooled       cropray.train.select.paired_auc_gain: one ROC-AUC over all out-of-fold scores
  within-fold  the folds' ROC-AUC differences weighted by their positive-negative pairs, each replicate
               redrawing positives and negatives within each fold (no pair mixes two fold models'
               score scales)

Rows are appended to --jsonl; a run already there is skipped. Torch runs on the process's threads.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make `research` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from research.quality_table import ensure_set  # noqa: E402

N_BOOT, CI = 2000, 0.95


def within_fold_gain(y, s_new, s_ref, fold, *, n_boot: int = N_BOOT, ci: float = CI, seed: int = 0) -> dict:
    """The pair-weighted mean over folds of ROC-AUC(s_new) - ROC-AUC(s_ref), with a bootstrap interval
    whose replicates redraw positives among a fold's positives and negatives among its negatives (the
    same draw for both scores)."""
    from cropray.train.select import _draw_counts, _weighted_aucs

    y, a, b, fold = (np.asarray(v) for v in (y, s_new, s_ref, fold))
    groups = [(np.flatnonzero((fold == f) & (y == 1)), np.flatnonzero((fold == f) & (y == 0))) for f in np.unique(fold)]
    groups = [(p, n) for p, n in groups if len(p) and len(n)]
    w = np.array([len(p) * len(n) for p, n in groups], np.float64)
    w /= w.sum()

    def diff(p, n, wp, wn):  # (B,) replicate ROC-AUC differences in one fold
        return _weighted_aucs(a[p], a[n], wp, wn) - _weighted_aucs(b[p], b[n], wp, wn)

    gain = sum(wk * diff(p, n, np.ones((1, len(p))), np.ones((1, len(n))))[0] for wk, (p, n) in zip(w, groups))
    rng = np.random.default_rng(seed)
    d = sum(wk * diff(p, n, _draw_counts(rng, n_boot, len(p)), _draw_counts(rng, n_boot, len(n)))
            for wk, (p, n) in zip(w, groups))
    lo, hi = np.quantile(d, [(1 - ci) / 2, (1 + ci) / 2])
    return {"gain": round(float(gain), 4), "lo": round(float(lo), 4), "hi": round(float(hi), 4), "proven": bool(lo > 0)}


def fresh_set(work: Path, n_fresh: int) -> tuple:
    """(the fresh LabeledSet, dedoppler's ROC-AUC on it): read and scored once for every run."""
    from sklearn.metrics import roc_auc_score

    from cropray.archive import read_labeled
    from cropray.evaluate.job import score_array
    from cropray.models import build_model

    fresh = read_labeled(ensure_set(work, "fresh", n_fresh))
    return fresh, float(roc_auc_score(fresh.y, score_array(build_model("dedoppler"), fresh.x)))


def run(work: Path, spec: str, fresh, fresh_physics: float, epochs: int | None) -> dict:
    from sklearn.metrics import roc_auc_score

    from cropray.archive import read_labeled
    from cropray.evaluate.job import score_array
    from cropray.models import build_model
    from cropray.train.config import TrainConfig
    from cropray.train.cv import cross_validate
    from cropray.train.fit import fit
    from cropray.train.select import paired_auc_gain

    n, arch, l2 = spec.split(":")
    kw = {"anchor": False} if l2 == "off" else {"anchor_l2": float(l2)}
    ls = read_labeled(ensure_set(work, "labels", int(n)))
    cfg = TrainConfig(arch=arch, seed=0, model_kwargs=kw, **({"epochs": epochs} if epochs else {}))
    rcfg = cfg.resolve(arch, len(ls.y))
    t0 = time.perf_counter()
    cv = cross_validate(rcfg, ls.x, ls.y, progress=False)
    res = fit(rcfg, ls.x, ls.y, epochs=max(1, int(np.median(cv.best_epochs))), progress=False)
    phys_labels = score_array(build_model("dedoppler"), ls.x)
    pooled = paired_auc_gain(ls.y, cv.oof_scores, phys_labels, seed=0).to_dict()
    return {"run": spec, "labels": len(ls.y), "arch": arch, "anchor_l2": l2,
            "cv_pooled": round(float(roc_auc_score(ls.y, cv.oof_scores)), 4),
            "cv_fold_mean": round(float(np.mean(cv.fold_auc)), 4),
            "fresh": round(float(roc_auc_score(fresh.y, score_array(res.model, fresh.x))), 4),
            "fresh_physics": round(fresh_physics, 4),
            "pooled": {k: pooled[k] for k in ("gain", "lo", "hi", "proven")},
            "within_fold": within_fold_gain(ls.y, cv.oof_scores, phys_labels, cv.fold),
            "seconds": round(time.perf_counter() - t0, 1), "n_fresh": len(fresh.y)}


def fmt(g: dict) -> str:
    return f"{g['gain']:+.3f} [{g['lo']:+.3f}, {g['hi']:+.3f}]{' proven' if g['proven'] else ''}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/qt"), help="sets folder, shared with quality_table.py")
    p.add_argument("--runs", default="50:shallow_cnn:0.05,200:shallow_cnn:0.05",
                   help="comma-separated LABELS:ARCH:ANCHOR_L2 (ANCHOR_L2 a number or off)")
    p.add_argument("--n-fresh", type=int, default=2000, help="fresh crops (default 2000)")
    p.add_argument("--jsonl", type=Path, default=None, help="append rows here; runs already there are skipped")
    p.add_argument("--smoke-test", action="store_true", help="26 labels, 60 fresh crops, 1 epoch")
    a = p.parse_args(argv)
    epochs = None
    if a.smoke_test:
        import tempfile

        a.work, a.runs, a.n_fresh, epochs = Path(tempfile.mkdtemp()), "26:shallow_cnn:0.05", 60, 1
    done = set()
    if a.jsonl and a.jsonl.exists():
        done = {json.loads(line)["run"] for line in a.jsonl.read_text().splitlines() if line.strip()}
    rows, fresh = [], None
    for spec in [s.strip() for s in a.runs.split(",") if s.strip()]:
        if spec in done:
            continue
        print(f"[{time.strftime('%H:%M:%S')}] {spec}", file=sys.stderr, flush=True)
        fresh = fresh or fresh_set(a.work, a.n_fresh)
        row = run(a.work, spec, *fresh, epochs)
        rows.append(row)
        if a.jsonl:
            with open(a.jsonl, "a") as f:
                f.write(json.dumps(row) + "\n")
    print("| labels | model | anchor_l2 | fresh ROC-AUC (physics) | CV pooled / fold mean | gain over physics, pooled [95%] "
          "| within folds [95%] |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['labels']} | {r['arch']} | {r['anchor_l2']} | {r['fresh']:.3f} ({r['fresh_physics']:.3f}) | "
              f"{r['cv_pooled']:.3f} / {r['cv_fold_mean']:.3f} | {fmt(r['pooled'])} | {fmt(r['within_fold'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
