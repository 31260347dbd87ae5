"""Does post-training int8 (or bf16) lose ROC-AUC beyond the fp32 interval? (issue 12 lever 1, QAT question)

For each case: k-fold CV of the architecture on labelled generator crops, then path-aware CV
(cropray.fastpath.path_cv: each fold's held-out crops through fold_cl, bf16 and int8 PT2E calibrated on
that fold's training part). With --shift: every fold model also scores a labelled *shifted* set
(benchmarks/shift_quality.py's mix: other DOF, RFI on positives, bandpass features, gain drift) through
each path, int8 still calibrated on generator crops (a calibration/scoring mismatch, as in real use),
fp32's interval by bootstrap. Training budgets are pinned (small, to fit 2 shared cores); the question is
precision vs fp32 on the same weights, not the best model.

    PYTHONPATH=<torchao> python benchmarks/path_quality.py --arch shallow_cnn --labels 50 --epochs 20
    python benchmarks/path_quality.py --arch shallow_cnn --labels 200 --epochs 15 --shift 1000
    python benchmarks/path_quality.py --arch deep_cnn --labels 1000 --epochs 3 --k 3 --epoch-crops 800
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from cropray.evaluate.metrics import binary_metrics, calibrate_threshold
from cropray.fastpath.path_cv import CALIBRATION_CROPS, path_aware_cv, runner_for
from cropray.synth import SynthConfig, generate
from cropray.train import TrainConfig
from cropray.train.cv import cross_validate
from cropray.train.job import calibration_sample

sys.path.insert(0, "benchmarks")
from shift_quality import shifted  # noqa: E402  (the shifted mix, one definition)

PATHS = ("fold_cl", "bf16", "int8")


def shift_eval(cv, x, y, n: int, seed: int) -> dict:
    """Each fold model on one shifted labelled set, per path; AUCs averaged over folds, fp32's interval
    from fold 0's bootstrap."""
    b = generate(n, shifted(SynthConfig().snr_range), seed=seed + 77)
    xs, ys = b.crops[:, None].astype(np.float32), b.label.astype(np.int64)
    out = {p: [] for p in ("eager", *PATHS)}
    iv = None
    for i, m in enumerate(cv.fold_models):
        tr = np.flatnonzero(cv.fold != i)
        calib = calibration_sample(x[tr], y[tr], CALIBRATION_CROPS, seed + i)
        with torch.inference_mode():
            ref = m.eval()(torch.from_numpy(xs)).float().numpy()
        if iv is None:
            r = binary_metrics(ys, ref, calibrate_threshold(ys, ref), n_boot=1000, seed=seed)["roc_auc"]
            iv = (r["lo"], r["hi"])
        out["eager"].append(binary_metrics(ys, ref, 0.5, n_boot=0)["roc_auc"]["value"])
        for p in PATHS:
            try:
                run = runner_for(m, p, calib)
                with torch.inference_mode():
                    s = run(torch.from_numpy(xs)).float().numpy()
                out[p].append(binary_metrics(ys, s, 0.5, n_boot=0)["roc_auc"]["value"])
            except Exception as e:  # noqa: BLE001 - report, not crash
                out[p].append(f"{type(e).__name__}: {e}"[:120])
    return {"n": n, "fold0_fp32_interval": iv, "auc_per_fold": out}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="shallow_cnn")
    ap.add_argument("--labels", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--epoch-crops", type=int, default=256)
    ap.add_argument("--k", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shift", type=int, default=0, help="shifted labelled crops to score (0 = skip)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    b = generate(a.labels, SynthConfig(), seed=a.seed + 5)
    x, y = b.crops[:, None].astype(np.float32), b.label.astype(np.int64)
    cfg = TrainConfig(arch=a.arch, epochs=a.epochs, epoch_crops=a.epoch_crops, seed=a.seed, patience=max(3, a.epochs // 3))
    t0 = time.perf_counter()
    cv = cross_validate(cfg, x, y, k=a.k, n_boot=1000, progress=False)
    cv_s = time.perf_counter() - t0
    rec = path_aware_cv(cv, x, y, paths=PATHS, n_boot=1000, seed=a.seed, log=print)
    res = {"arch": a.arch, "labels": a.labels, "k": cv.k, "epochs": a.epochs, "cv_s": round(cv_s, 1),
           "path_cv_s": rec.seconds, "record": rec.to_dict()}
    if a.shift:
        res["shift"] = shift_eval(cv, x, y, a.shift, a.seed)
    print(json.dumps({k: v for k, v in res.items() if k != "record"}, indent=1))
    print("admissible:", rec.admissible, "interval:", rec.interval)
    for name, q in rec.paths.items():
        print(f"  {name:9s} {q.status} AUC {q.auc} recall@1% {q.recall_at_1pct_fpr and q.recall_at_1pct_fpr['value']} "
              f"thr {q.threshold} flips {q.flips_vs_fp32} max|d| {q.max_abs_diff} {q.seconds}s {q.reason}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
