"""Quality benchmark: how well each architecture learns from 25 to 1000 labels, against de-Doppler.

For each label count, a stratified draw from one synthetic labelled pool trains every learned
architecture (and calibrates the label-free `dedoppler` baseline's threshold); each model is then scored
on fresh crops from a different generator seed (default 5,000). One table: labels, arch, ROC-AUC (95%
bootstrap interval), recall at 1% FPR, accuracy at the calibrated threshold, train seconds.

Protocols (--protocol):
  holdout  fit() with early stopping on a stratified 20% validation split; threshold = Youden's J on
           that split's scores (cheap: one training per row).
  cv       the `cropray train` path: k-fold CV (lockstep), threshold on out-of-fold scores, refit on all
           labels for the median best epoch (about k + 1 trainings per row).

  python research/quality.py                                  # full table (~1-2 h on 2 busy cores)
  python research/quality.py --quick                          # 25 and 100 labels, 1,000 test crops
  python research/quality.py --labels 50,200 --archs siamese,shallow_cnn --protocol cv
  python research/quality.py --track-prior on                 # CNNs only with the de-Doppler prior
  python research/quality.py --smoke-test                     # 25 labels, 200 test crops, 1 epoch: checks that it runs
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

from cropray.evaluate import binary_metrics, calibrate_threshold, score_array
from cropray.models import build_model, select_arch
from cropray.models.track_prior import TRACK_PRIOR
from cropray.synth import SynthConfig, generate
from cropray.train import TrainConfig, cross_validate, fit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cropray.report.table import fmt_table  # noqa: E402

LEARNED = ("siamese", "shallow_cnn", "deep_cnn")
SIAMESE_MAX = 499  # "applicable": the Siamese gallery model is trained up to the end of the mid regime


def draw(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n indices, stratified by the pool's class ratio (at least 2 of each class)."""
    pos, neg = rng.permutation(np.flatnonzero(y == 1)), rng.permutation(np.flatnonzero(y == 0))
    n_pos = int(np.clip(round(n * len(pos) / len(y)), 2, n - 2))
    return np.sort(np.concatenate([pos[:n_pos], neg[: n - n_pos]]))


def variants(archs: list[str], track: str) -> list[tuple[str, str, dict]]:
    """(row name, architecture, model_kwargs) per model to train; CNNs with/without the track prior."""
    out = []
    for a in archs:
        if a in ("shallow_cnn", "deep_cnn") and track != "default":
            for on in {"on": (True,), "off": (False,), "both": (False, True)}[track]:
                out.append((a + ("+track" if on else ""), a, {"track_prior": on}))
        else:
            out.append((a, a, {}))
    return out


def train_one(arch: str, x, y, args, kwargs=None) -> tuple[torch.nn.Module, float, dict]:
    """-> (model taking raw crops, threshold, info). dedoppler: no training, threshold on the labels."""
    if arch == "dedoppler":
        m = build_model("dedoppler")
        return m, calibrate_threshold(y, score_array(m, x)), {"epochs": 0}
    cfg = TrainConfig(arch=arch, seed=args.seed, model_kwargs=dict(kwargs or {})).resolve(arch)
    if args.max_epochs:
        cfg = cfg.replace(epochs=min(cfg.epochs, args.max_epochs))
    if args.protocol == "cv":
        cv = cross_validate(cfg, x, y, progress=False, n_boot=0)
        final = max(1, int(np.median(cv.best_epochs)))
        res = fit(cfg, x, y, epochs=final, progress=False)
        return res.model, cv.threshold, {"epochs": final, "cv_auc": cv.metrics["roc_auc"]["value"]}
    res = fit(cfg, x, y, progress=False)
    return res.model, calibrate_threshold(res.val_labels, res.val_scores), {"epochs": res.best_epoch}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--labels", default="25,50,100,200,500,1000", help="label counts (comma-separated)")
    p.add_argument("--archs", default=",".join(LEARNED),
                   help="learned architectures to train (dedoppler always; siamese only up to 499 labels)")
    p.add_argument("--test-n", type=int, default=5000, help="fresh test crops (default 5000)")
    p.add_argument("--pool-seed", type=int, default=1, help="generator seed of the labelled pool")
    p.add_argument("--test-seed", type=int, default=2, help="generator seed of the fresh test crops")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--protocol", choices=("holdout", "cv"), default="holdout")
    p.add_argument("--max-epochs", type=int, default=None, help="cap every architecture's epochs")
    p.add_argument("--track-prior", choices=("default", "on", "off", "both"), default="both",
                   help="CNNs with the de-Doppler track prior (rows '+track'), without, or both (default)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--quick", action="store_true", help="25 and 100 labels, 1000 test crops, <= 8 epochs")
    p.add_argument("--smoke-test", action="store_true",
                   help="25 labels, shallow_cnn and dedoppler, 200 test crops, 1 epoch (seconds; CI runs it)")
    p.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = p.parse_args(argv)
    if args.smoke_test:
        args.labels, args.test_n, args.max_epochs = "25", 200, 1
        args.archs = args.archs if args.archs != ",".join(LEARNED) else "shallow_cnn"
    if args.quick:
        args.labels, args.test_n, args.max_epochs = "25,100", 1000, args.max_epochs or 8
    if args.threads:
        torch.set_num_threads(args.threads)
    counts = [int(v) for v in args.labels.split(",")]
    models = variants([a for a in args.archs.split(",") if a] + ["dedoppler"], args.track_prior)
    cfg = SynthConfig()  # the generator's defaults, untouched: SNR 5-100 log-uniform, 50% positives
    pool = generate(max(counts), cfg, seed=args.pool_seed)
    test = generate(args.test_n, cfg, seed=args.test_seed)
    xp, yp = pool.crops[:, None], pool.label.astype(np.int64)
    xt, yt = test.crops[:, None], test.label.astype(np.int64)
    print(f"pool seed {args.pool_seed} ({len(yp)} crops), test seed {args.test_seed} ({len(yt)} crops, "
          f"{yt.mean():.0%} signal), protocol {args.protocol}, torch threads {torch.get_num_threads()}",
          flush=True)
    rng = np.random.default_rng(args.seed)
    rows, header = [], ["labels", "arch", "ROC-AUC [95% CI]", "recall@1%FPR", "acc@thr", "epochs", "train s"]
    for n in counts:
        idx = draw(yp, n, rng)
        for name, arch, kwargs in models:
            if arch == "siamese" and n > SIAMESE_MAX:
                continue
            t0 = time.perf_counter()
            model, thr, info = train_one(arch, xp[idx], yp[idx], args, kwargs)
            secs = time.perf_counter() - t0
            s = score_array(model, xt)
            m = binary_metrics(yt, s, thr, n_boot=200, seed=0)
            row = {"labels": n, "arch": name, "regime_arch": select_arch(n), "model_kwargs": kwargs, "threshold": thr, "train_s": secs,
                   **info, **{k: m[k] for k in ("roc_auc", "pr_auc", "recall_at_1pct_fpr", "accuracy",
                                                 "balanced_accuracy")}}
            rows.append(row)
            print(f"  {n:5d} {name:17s} AUC {m['roc_auc']['value']:.4f}  recall@1%FPR "
                  f"{m['recall_at_1pct_fpr']['value']:.3f}  acc {m['accuracy']['value']:.3f}  "
                  f"{secs:7.1f} s", flush=True)
    table = [[r["labels"], r["arch"] + (" *" if is_auto(r) else ""),
              f"{r['roc_auc']['value']:.4f} [{r['roc_auc']['lo']:.3f}, {r['roc_auc']['hi']:.3f}]",
              f"{r['recall_at_1pct_fpr']['value']:.3f}", f"{r['accuracy']['value']:.3f}", r["epochs"],
              f"{r['train_s']:.1f}"] for r in rows]
    print("\n" + fmt_table(table, header))
    print("* = the architecture `--arch auto` picks for that label count")
    print("\n" + verdict(rows))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=2)
    return 0


def is_auto(r: dict) -> bool:
    """The row is what `cropray train --arch auto` builds: the regime's architecture, default hparams."""
    base = r["arch"].split("+")[0]
    return base == r["regime_arch"] and r.get("model_kwargs", {}).get("track_prior", TRACK_PRIOR) == TRACK_PRIOR


def verdict(rows: list[dict]) -> str:
    """The issue's quality bar, checked on the rows."""
    lines = []
    ok = True
    for n in sorted({r["labels"] for r in rows}):
        rs = [r for r in rows if r["labels"] == n]
        base = next((r["roc_auc"]["value"] for r in rs if r["arch"] == "dedoppler"), None)
        learned = [r for r in rs if r["arch"] != "dedoppler"]
        if not learned or base is None:
            continue
        best = max(learned, key=lambda r: r["roc_auc"]["value"])
        beats = best["roc_auc"]["value"] > base
        if n >= 50:
            ok &= beats
        if n == 200:
            ok &= best["roc_auc"]["value"] >= 0.95
        lines.append(f"{n:5d} labels: best {best['arch']} AUC {best['roc_auc']['value']:.4f} vs dedoppler "
                     f"{base:.4f} -> {'beats' if beats else 'DOES NOT beat'} the baseline")
    lines.append(f"quality bar (best beats dedoppler at >= 50 labels; AUC >= 0.95 at 200): "
                 f"{'MET' if ok else 'NOT MET'}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
