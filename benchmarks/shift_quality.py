"""Quality under shift: labels from one generator setting; archive and test sets from another.

    python benchmarks/shift_quality.py --labels 50,200 --seeds 0 --out /tmp/shift.json

Labels: `cropray synth`'s default mix (straight and non-drifting tracks, the default noise and RFI).
Archive and test: a shifted mix -- skewed chi-square noise (dof 1-8), twice the impulsive RFI and
strong bandpass structure, RFI on 30% of positives, every track morphology (curved, wobbling and
wandering tracks the labels never show). Test SNR 6-60; a faint test set at SNR 4-12. The archive
(unlabelled, 30% signals) is written as Parquet and read through `cropray.inject`.

Methods, one model each (the `cropray train` refit path: `fit` with its own validation split):
  labels   real labels only
  inject   + crops injected into archive backgrounds (cropray.inject, real_share of each epoch real)
  self     + FixMatch-style pseudo-labels on archive crops (cropray.train.self_train)
  both     inject, then self-training on top
  dedoppler  label-free baseline;  oracle  matched filter told each test crop's true track, width and
  profile (negatives get a random positive's template), on the dedoppler's own normalised crop.
Reports ROC-AUC [95% bootstrap], recall@1%FPR, faint ROC-AUC, recall by SNR bin at the 1%-FPR
threshold, the share of the dedoppler->oracle gap each method closes, and wall seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

from cropray.archive import write_archive
from cropray.evaluate.metrics import binary_metrics, snr_recall
from cropray.inject import InjectConfig
from cropray.inject.build import inject_from_archive
from cropray.inject.sample import sample_backgrounds
from cropray.synth import SynthConfig, generate
from cropray.synth.components import narrowband
from cropray.train import TrainConfig, fit
from cropray.train.archive_data import ExtraCrops
from cropray.train.self_train import SelfTrainConfig, self_train

LABEL_CFG = SynthConfig()
SHIFT = dict(dof_range=(1.0, 8.0), rfi_on_positive=0.3, bandpass_feature_prob=0.3, gain_drift_prob=0.6,
             negative_weights={"noise": 0.1, "impulse": 0.3, "blob": 0.3, "bump": 0.1, "bandpass": 0.2},
             track_weights={"none": 1, "straight": 1, "curved": 1, "wobble": 1, "wander": 1})


def shifted(snr, positive_fraction=0.5) -> SynthConfig:
    return SynthConfig(snr_range=snr, positive_fraction=positive_fraction, **SHIFT)


def score(model, x: np.ndarray) -> np.ndarray:
    import torch

    model.eval()
    with torch.inference_mode():
        return np.concatenate([model(torch.from_numpy(np.ascontiguousarray(x[i:i + 512]))).float().numpy()
                               for i in range(0, len(x), 512)])


def oracle(b) -> np.ndarray:
    """Matched filter along each crop's true track (constant envelope), on dedoppler's normalised crop."""
    import torch

    from cropray.models import build_model

    pre = build_model("dedoppler").preprocess
    with torch.inference_mode():
        z = np.concatenate([pre(torch.from_numpy(b.crops[i:i + 512, None])).numpy()[:, 0]
                            for i in range(0, len(b), 512)])
    pos = np.flatnonzero(b.label == 1)
    src = np.where(b.label == 1, np.arange(len(b)), np.random.default_rng(0).choice(pos, len(b)))
    prof = np.array([{"gaussian": 0, "sinc2": 1, "boxcar": 2}[p] for p in b.profile[src]])
    T, F = b.crops.shape[1:]
    out = np.empty(len(b))
    for i in range(0, len(b), 512):
        s = src[i:i + 512]
        tpl = narrowband(np.ones(len(s)), None, None, b.width[s], prof[i:i + 512], np.ones((len(s), T)), F,
                         centre=b.track_centre[s].astype(np.float64))
        out[i:i + 512] = (z[i:i + 512] * tpl).sum(axis=(1, 2)) / np.sqrt((tpl ** 2).sum(axis=(1, 2)))
    return out


def evaluate(s_test, test, s_faint, faint) -> dict:
    m = binary_metrics(test.label, s_test, 0.0, n_boot=500, seed=0)
    neg = np.sort(s_test[test.label == 0])
    thr = neg[int(np.ceil(0.99 * len(neg))) - 1]  # 1% FPR on the test negatives
    bins = snr_recall(test.label, s_test, test.snr, float(np.nextafter(thr, np.inf)), bins=5)
    fm = binary_metrics(faint.label, s_faint, 0.0, n_boot=0)
    return {"auc": m["roc_auc"]["value"], "auc_lo": m["roc_auc"]["lo"], "auc_hi": m["roc_auc"]["hi"],
            "recall_1pct": m["recall_at_1pct_fpr"]["value"], "faint_auc": fm["roc_auc"]["value"],
            "snr_bins": [(round(b["snr_lo"], 1), round(b["snr_hi"], 1), round(b["recall"], 3)) for b in bins]}


def run_methods(args, n, seed, archive, test, faint) -> list[dict]:
    lab = generate(n, LABEL_CFG, seed=1000 + seed)
    x, y = lab.crops[:, None], lab.label.astype(np.int64)
    cfg = TrainConfig(arch=args.arch, epochs=args.epochs, seed=seed)
    icfg = InjectConfig(archive_crops=args.archive_crops, seed=seed, per_epoch=args.per_epoch,
                        real_share=args.real_share, min_backgrounds=10)
    t0 = time.perf_counter()
    inj = inject_from_archive(archive, x, y, icfg)
    t_inj = time.perf_counter() - t0
    extra = ExtraCrops(inj.x, inj.y, icfg.real_share, icfg.per_epoch)
    pool = sample_backgrounds(archive, args.pool, seed + 17).x if {"self", "both"} & set(args.methods) else None
    st = SelfTrainConfig(rounds=1, tau=args.tau, views=args.views, max_pseudo=args.pool // 4, seed=seed)
    rows = []
    for method in args.methods:
        t0 = time.perf_counter()
        info = {}
        if method == "labels":
            model = fit(cfg, x, y, progress=False).model
        elif method == "inject":
            model = fit(cfg, x, y, extra=extra, progress=False).model
        else:
            res, info = self_train(cfg, x, y, pool, st, extra=extra if method == "both" else None,
                                   real_share=icfg.real_share, per_epoch=icfg.per_epoch, progress=False)
            model = res.model
        wall = time.perf_counter() - t0 + (t_inj if method in ("inject", "both") else 0.0)
        r = {"labels": n, "seed": seed, "method": method, "wall_s": round(wall, 1),
             **evaluate(score(model, test.crops[:, None]), test, score(model, faint.crops[:, None]), faint)}
        if info:
            r["pseudo"] = info["rounds"]
        if method in ("inject", "both"):
            r["excluded"], r["usable"] = inj.summary["excluded"], inj.summary["usable"]
        print(json.dumps(r), file=sys.stderr, flush=True)
        rows.append(r)
    return rows


def baselines(test, faint) -> list[dict]:
    from cropray.models import build_model

    out = []
    t0 = time.perf_counter()
    dd = build_model("dedoppler")
    out.append({"labels": "-", "method": "dedoppler", "wall_s": 0.0,
                **evaluate(score(dd, test.crops[:, None]), test, score(dd, faint.crops[:, None]), faint)})
    out[-1]["wall_s"] = round(time.perf_counter() - t0, 1)
    out.append({"labels": "-", "method": "oracle", "wall_s": 0.0, **evaluate(oracle(test), test, oracle(faint), faint)})
    return out


def table(rows: list[dict]) -> str:
    dd = next(r for r in rows if r["method"] == "dedoppler")["auc"]
    orc = next(r for r in rows if r["method"] == "oracle")["auc"]
    lines = ["| labels | method | ROC-AUC [95%], SNR 6-60 | recall@1%FPR | faint AUC, SNR 4-12 | gap closed | "
             "recall by SNR bin @1%FPR | wall s |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        gap = (r["auc"] - dd) / (orc - dd) if orc > dd else float("nan")
        bins = ", ".join(f"{lo:g}-{hi:g} {rec:.2f}" for lo, hi, rec in r["snr_bins"])
        lines.append(f"| {r['labels']} | {r['method']} | {r['auc']:.3f} [{r['auc_lo']:.3f}, {r['auc_hi']:.3f}] | "
                     f"{r['recall_1pct']:.3f} | {r['faint_auc']:.3f} | {gap:+.2f} | {bins} | {r['wall_s']:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--labels", default="25,50,200,1000", help="label counts (comma-separated)")
    p.add_argument("--seeds", default="0", help="seeds (comma-separated)")
    p.add_argument("--methods", default="labels,inject,self,both")
    p.add_argument("--arch", default="shallow_cnn")
    p.add_argument("--epochs", type=int, default=None, help="max epochs (default: the architecture's)")
    p.add_argument("--test", type=int, default=3000, help="test crops (SNR 6-60)")
    p.add_argument("--faint", type=int, default=2000, help="faint test crops (SNR 4-12)")
    p.add_argument("--archive-rows", type=int, default=20000, help="rows of the unlabelled shifted archive")
    p.add_argument("--archive-crops", type=int, default=8000, help="backgrounds drawn for injection")
    p.add_argument("--pool", type=int, default=4000, help="archive crops offered to self-training")
    p.add_argument("--per-epoch", type=int, default=1024, help="archive crops drawn per epoch")
    p.add_argument("--real-share", type=float, default=0.5)
    p.add_argument("--tau", type=float, default=0.95)
    p.add_argument("--views", type=int, default=4)
    p.add_argument("--out", default=None, help="write the rows as JSON here")
    args = p.parse_args(argv)
    args.methods = args.methods.split(",")
    test = generate(args.test, shifted((6.0, 60.0)), seed=9)
    faint = generate(args.faint, shifted((4.0, 12.0)), seed=10)
    t0 = time.perf_counter()
    rows = baselines(test, faint)
    with tempfile.TemporaryDirectory() as tmp:
        arc = generate(args.archive_rows, shifted((4.0, 60.0), positive_fraction=0.3), seed=11)
        write_archive(os.path.join(tmp, "archive"), {"crop_id": np.array([f"z{i}" for i in range(len(arc))],
                                                                         dtype=object)}, arc.crops, files=4)
        del arc
        for n in [int(v) for v in args.labels.split(",")]:
            for seed in [int(v) for v in args.seeds.split(",")]:
                rows.extend(run_methods(args, n, seed, os.path.join(tmp, "archive"), test, faint))
    print(table(rows))
    print(f"total {time.perf_counter() - t0:.0f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
