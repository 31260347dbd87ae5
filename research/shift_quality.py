"""Quality under shift: labels from one generator setting; archive and test sets from another.

    python research/shift_quality.py --labels 50,200 --seeds 0 --out /tmp/shift.json
    python research/shift_quality.py --smoke-test   # 25 labels, a 2,000-row archive, 1 epoch: checks that it runs

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
  target   diagnostic ceiling, not a method: the "injected" crops replaced by labelled crops drawn from
           the archive's own (shifted) generator -- what this model and budget reach when the archive
           crops are perfectly labelled and perfectly matched to the test mix
  clean    diagnostic: inject, minus the plain backgrounds that truly hold an archive signal (the
           benchmark knows the archive's truth; a user does not) -- what contaminated negatives cost
  dedoppler  label-free baseline;  oracle  matched filter told each test crop's true track, width and
  profile (negatives get a random positive's template), on the dedoppler's own normalised crop.
Reports ROC-AUC [95% bootstrap], recall@1%FPR, faint ROC-AUC, recall by SNR bin at the 1%-FPR
threshold, the share of the dedoppler->oracle gap each method closes, and wall seconds.

Every training setting is pinned by a flag (epochs, batch size, lr, epoch_crops, patience, min_epochs,
per_epoch, archive_crops, real_share, injected SNR range, exclusion quantile) and recorded with each
row, so changes to the library's defaults do not move these figures. Torch runs on `--threads` (1)
threads: the benchmark shares small machines. Each finished row is appended to `--jsonl` at once.
The archive (and its truth: label and SNR per row, as .npz) is cached in `--archive-dir`.
"""

from __future__ import annotations

import argparse
import json
import math
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
    hit = s_test > thr
    kind = np.char.replace(test.kind.astype(str), "+rfi", "")
    by_track = {k: round(float(hit[(test.label == 1) & (kind == k)].mean()), 3)
                for k in np.unique(kind[test.label == 1])}  # recall per morphology at the 1%-FPR threshold
    fp_kinds = dict(zip(*np.unique(test.kind[(test.label == 0) & hit], return_counts=True)))
    return {"recall_by_track": by_track, "fp_kinds": {str(k): int(v) for k, v in fp_kinds.items()},"auc": m["roc_auc"]["value"], "auc_lo": m["roc_auc"]["lo"], "auc_hi": m["roc_auc"]["hi"],
            "recall_1pct": m["recall_at_1pct_fpr"]["value"], "faint_auc": fm["roc_auc"]["value"],
            "snr_bins": [(round(b["snr_lo"], 1), round(b["snr_hi"], 1), round(b["recall"], 3)) for b in bins]}


def train_cfg(args, seed: int) -> TrainConfig:
    """Every budget-relevant setting pinned (library defaults may change between runs)."""
    return TrainConfig(arch=args.arch, epochs=args.epochs, seed=seed, batch_size=args.batch_size, lr=args.lr,
                       epoch_crops=args.epoch_crops, patience=args.patience,
                       min_epochs=args.epochs // 2 if args.min_epochs is None else args.min_epochs)


def inject_cfg(args, seed: int) -> InjectConfig:
    return InjectConfig(archive_crops=args.archive_crops, seed=seed, per_epoch=args.per_epoch,
                        real_share=args.real_share, snr_range=tuple(args.inject_snr), inject_fraction=0.5,
                        exclude_quantile=args.exclude_quantile, kinds="all", read_oversample=2.0,
                        min_backgrounds=10)


def contamination(inj, truth: dict) -> dict:
    """How many plain (label 0) injected-set crops truly hold an archive signal, and how bright."""
    row = np.array([int(str(c)[1:]) for c in inj.source_id])  # crop_id "z<row>"
    plain = inj.y == 0
    hold = plain & (truth["label"][row] == 1)
    snr = truth["snr"][row[hold]]
    return {"plain": int(plain.sum()), "plain_with_signal": int(hold.sum()),
            "plain_with_signal_snr_median": round(float(np.median(snr)), 2) if len(snr) else None,
            "plain_with_signal_snr_lt_12": int((snr < 12).sum()), "_row": row, "_hold": hold}


def target_extra(args, seed: int, n: int) -> ExtraCrops:
    """Labelled crops from the archive's own generator (the diagnostic ceiling), as many as injection has."""
    t = generate(n, shifted(tuple(args.inject_snr)), seed=5000 + seed)
    return ExtraCrops(t.crops[:, None], t.label.astype(np.int64), args.real_share, args.per_epoch)


def run_methods(args, n, seed, archive, truth, test, faint) -> list[dict]:
    lab = generate(n, LABEL_CFG, seed=1000 + seed)
    x, y = lab.crops[:, None], lab.label.astype(np.int64)
    cfg, icfg = train_cfg(args, seed), inject_cfg(args, seed)
    needs_inj = {"inject", "both", "clean", "target", "prep"} & set(args.methods)
    t0, c0 = time.perf_counter(), time.process_time()
    inj = inject_from_archive(archive, x, y, icfg) if needs_inj else None
    t_inj, c_inj = time.perf_counter() - t0, time.process_time() - c0
    cont = contamination(inj, truth) if inj is not None else None
    extra = ExtraCrops(inj.x, inj.y, icfg.real_share, icfg.per_epoch) if inj is not None else None
    pool = sample_backgrounds(archive, args.pool, seed + 17).x if {"self", "both"} & set(args.methods) else None
    rows = []
    for method in args.methods:
        if method == "prep":  # the archive's cost alone: sampling, exclusion statistic, injection
            r = {"labels": n, "seed": seed, "method": "prep", "tag": args.tag, "inject_s": round(t_inj, 1),
                 "drawn": inj.summary["drawn"], "excluded": inj.summary["excluded"], "usable": inj.summary["usable"],
                 "ms_per_background": round(1000 * t_inj / max(1, inj.summary["drawn"]), 2),
                 "cpu_s": round(c_inj, 1), "cpu_ms_per_background": round(1000 * c_inj / max(1, inj.summary["drawn"]), 2),
                 "load_average": round(os.getloadavg()[0], 1), "settings": {"inject": icfg.to_dict()}}
            _emit(args, r)
            rows.append(r)
            continue
        t0, c0 = time.perf_counter(), time.process_time()  # CPU time: the load-independent cost
        info = {}
        if method == "labels":
            res = fit(cfg, x, y, progress=False)
        elif method in ("inject", "clean", "target"):
            if method == "clean":
                keep = ~cont["_hold"]
                ex = ExtraCrops(inj.x[keep], inj.y[keep], icfg.real_share, icfg.per_epoch)
            else:
                ex = target_extra(args, seed, len(inj)) if method == "target" else extra
            res = fit(cfg, x, y, extra=ex, progress=False)
        else:
            # only the self/both methods need it
            from cropray.train.self_train import SelfTrainConfig, self_train

            st = SelfTrainConfig(rounds=1, tau=args.tau, views=args.views, max_pseudo=args.pool // 4, seed=seed)
            res, info = self_train(cfg, x, y, pool, st, extra=extra if method == "both" else None,
                                   real_share=icfg.real_share, per_epoch=icfg.per_epoch, progress=False)
        model = res.model
        wall = time.perf_counter() - t0 + (t_inj if method in ("inject", "both", "clean") else 0.0)
        uses_archive = method != "labels"
        real = len(y) - int(round(cfg.val_fraction * len(y)))  # approx. training split of the labels
        per_epoch_archive = min(icfg.per_epoch, len(inj)) if uses_archive and inj is not None else 0
        r = {"labels": n, "seed": seed, "method": method, "tag": args.tag, "wall_s": round(wall, 1),
             "fit_s": round(res.seconds, 1), "epochs_run": len(res.history), "best_epoch": res.best_epoch,
             "archive_crops_seen": per_epoch_archive * len(res.history),
             **evaluate(score(model, test.crops[:, None]), test, score(model, faint.crops[:, None]), faint)}
        if uses_archive and inj is not None:
            draws = per_epoch_archive + max(real, math.ceil(per_epoch_archive * icfg.real_share
                                                            / (1 - icfg.real_share)))
        else:
            draws = max(real, cfg.epoch_crops)
        r["train_draws"] = draws * len(res.history)
        r["ms_per_draw"] = round(1000 * res.seconds / max(1, r["train_draws"]), 2)
        r["cpu_s"] = round(time.process_time() - c0, 1)  # training (all rounds) + scoring the test sets
        r["cpu_ms_per_draw"] = round(1000 * r["cpu_s"] / max(1, r["train_draws"]), 2)
        if info:
            r["pseudo"] = info["rounds"]
        if inj is not None and method in ("inject", "both", "clean"):
            r["excluded"], r["usable"], r["inject_s"] = inj.summary["excluded"], inj.summary["usable"], round(t_inj, 1)
            r["inject_cpu_s"] = round(c_inj, 1)
            r["contamination"] = {k: v for k, v in cont.items() if not k.startswith("_")}
        r["settings"] = {"train": {k: getattr(res.cfg, k) for k in ("arch", "epochs", "batch_size", "lr", "epoch_crops",
                                                                    "patience", "min_epochs", "val_fraction", "ema")},
                         "inject": icfg.to_dict() if uses_archive else None}
        r["load_average"] = round(os.getloadavg()[0], 1)
        _emit(args, r)
        rows.append(r)
    return rows


def _emit(args, r: dict) -> None:
    print(json.dumps(r), file=sys.stderr, flush=True)
    if args.jsonl:
        with open(args.jsonl, "a") as f:
            f.write(json.dumps(r) + "\n")


def load_archive(args) -> tuple[str, dict]:
    """The shifted archive as Parquet in args.archive_dir (made once) and its truth (label, snr per row)."""
    d = os.path.join(args.archive_dir, f"rows{args.archive_rows}")
    truth_path = os.path.join(d, "truth.npz")
    if not os.path.exists(truth_path):
        arc = generate(args.archive_rows, shifted((4.0, 60.0), positive_fraction=0.3), seed=11)
        write_archive(os.path.join(d, "archive"), {"crop_id": np.array([f"z{i}" for i in range(len(arc))],
                                                                       dtype=object)}, arc.crops, files=8)
        np.savez(truth_path, label=arc.label, snr=arc.snr)
        del arc
    with np.load(truth_path, allow_pickle=False) as z:
        truth = {"label": z["label"], "snr": z["snr"]}
    return os.path.join(d, "archive"), truth


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


def budget(r: dict) -> str:
    """'bg 20k, 9.2k seen, rs 0.5' from a row's settings: what the archive gave this model."""
    inj = (r.get("settings") or {}).get("inject")
    if not inj:
        return "-"
    snr = inj["snr_range"]
    return (f"{inj['archive_crops'] / 1000:g}k bg, {r['archive_crops_seen'] / 1000:.1f}k seen, rs {inj['real_share']:g}"
            + ("" if list(snr) == [2.0, 60.0] else f", snr {snr[0]:g}-{snr[1]:g}"))


def table(rows: list[dict]) -> str:
    dd = next(r for r in rows if r["method"] == "dedoppler")
    orc = next(r for r in rows if r["method"] == "oracle")
    lines = ["| labels | method | arch | archive budget | ROC-AUC [95%], SNR 6-60 | recall@1%FPR | faint AUC, SNR 4-12 | "
             "gap closed: AUC / recall | recall by SNR bin @1%FPR | wall s |", "|---|---|---|---|---|---|---|---|---|---|"]

    def closed(r, k):  # share of the dedoppler -> oracle distance that row r closes on metric k
        return (r[k] - dd[k]) / (orc[k] - dd[k]) if orc[k] > dd[k] else float("nan")

    for r in rows:
        gap = f"{closed(r, 'auc'):+.2f} / {closed(r, 'recall_1pct'):+.2f}"
        bins = ", ".join(f"{lo:g}-{hi:g} {rec:.2f}" for lo, hi, rec in r["snr_bins"])
        arch = ((r.get("settings") or {}).get("train") or {}).get("arch", "-")
        lines.append(f"| {r['labels']} | {r['method']} | {arch} | {budget(r)} | {r['auc']:.3f} [{r['auc_lo']:.3f}, "
                     f"{r['auc_hi']:.3f}] | {r['recall_1pct']:.3f} | {r['faint_auc']:.3f} | {gap} | {bins} | "
                     f"{r['wall_s']:.0f} |")
    return "\n".join(lines)


def table_from(path: str) -> str:
    """The table of every row of a --jsonl file (baselines first), and the same rows as CSV beside it."""
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    base = {r["method"]: r for r in rows if r["method"] in ("dedoppler", "oracle")}
    rest = [r for r in rows if r["method"] not in ("dedoppler", "oracle", "prep")]
    rest.sort(key=lambda r: (int(r["labels"]), r["seed"]))
    rows = [base["dedoppler"], base["oracle"], *rest]
    dd, orc = base["dedoppler"]["auc"], base["oracle"]["auc"]
    rdd, rorc = base["dedoppler"]["recall_1pct"], base["oracle"]["recall_1pct"]
    cols = ["labels", "seed", "method", "tag", "auc", "auc_lo", "auc_hi", "recall_1pct", "faint_auc", "gap_closed",
            "gap_closed_recall",
            "archive_crops_seen", "wall_s", "fit_s", "ms_per_draw", "cpu_s", "cpu_ms_per_draw"]
    with open(os.path.splitext(path)[0] + ".csv", "w") as f:
        f.write(",".join(cols) + "\n")
        for r in rows:
            v = {**r, "gap_closed": round((r["auc"] - dd) / (orc - dd), 4),
                 "gap_closed_recall": round((r["recall_1pct"] - rdd) / (rorc - rdd), 4)}
            f.write(",".join(str(v.get(c, "")) for c in cols) + "\n")
    return table(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--labels", default="25,50,200,1000", help="label counts (comma-separated)")
    p.add_argument("--seeds", default="0", help="seeds (comma-separated)")
    p.add_argument("--methods", default="labels,inject,self,both", help="labels, inject, self, both, target, clean")
    p.add_argument("--arch", default="shallow_cnn")
    p.add_argument("--epochs", type=int, default=12, help="epochs (pinned)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--epoch-crops", type=int, default=256, help="minimum draws per epoch without an archive")
    p.add_argument("--patience", type=int, default=12)
    p.add_argument("--min-epochs", type=int, default=None, help="default: epochs // 2")
    p.add_argument("--test", type=int, default=2000, help="test crops (SNR 6-60)")
    p.add_argument("--faint", type=int, default=1000, help="faint test crops (SNR 4-12)")
    p.add_argument("--archive-rows", type=int, default=100_000, help="rows of the unlabelled shifted archive")
    p.add_argument("--archive-dir", default=os.path.join(tempfile.gettempdir(), "cropray_shift_archive"),
                   help="where the archive is written once and reused")
    p.add_argument("--archive-crops", type=int, default=20_000, help="backgrounds drawn for injection")
    p.add_argument("--pool", type=int, default=2000, help="archive crops offered to self-training")
    p.add_argument("--per-epoch", type=int, default=768, help="archive crops drawn per epoch")
    p.add_argument("--real-share", type=float, default=0.5)
    p.add_argument("--inject-snr", type=float, nargs=2, default=(2.0, 60.0), help="injected SNR range (log-uniform)")
    p.add_argument("--exclude-quantile", type=float, default=0.99)
    p.add_argument("--tau", type=float, default=0.95)
    p.add_argument("--views", type=int, default=4)
    p.add_argument("--threads", type=int, default=1, help="torch threads (the benchmark shares small machines)")
    p.add_argument("--no-baselines", action="store_true", help="skip the dedoppler and oracle rows")
    p.add_argument("--tag", default="", help="a name for this configuration, kept in every row")
    p.add_argument("--jsonl", default=None, help="append each finished row here")
    p.add_argument("--out", default=None, help="write the rows as JSON here")
    p.add_argument("--table-from", default=None, help="print the table of a --jsonl file (and write it as CSV)")
    p.add_argument("--smoke-test", action="store_true",
                   help="25 labels, labels/inject/self, a 2,000-row archive in a temporary directory, 1 epoch, "
                        "300 + 200 test crops (CI runs it)")
    args = p.parse_args(argv)
    if args.smoke_test:
        args.labels, args.seeds, args.methods, args.epochs, args.min_epochs = "25", "0", "labels,inject,self", 1, 1
        args.test, args.faint, args.archive_rows, args.archive_crops, args.pool = 300, 200, 2000, 400, 100
        args.per_epoch, args.epoch_crops = 64, 64
        args.archive_dir = tempfile.mkdtemp(prefix="cropray_shift_smoke_")
    if args.table_from:
        print(table_from(args.table_from))
        return 0
    args.methods = args.methods.split(",")
    import torch

    torch.set_num_threads(args.threads)
    test = generate(args.test, shifted((6.0, 60.0)), seed=9)
    faint = generate(args.faint, shifted((4.0, 12.0)), seed=10)
    t0 = time.perf_counter()
    rows = [] if args.no_baselines else baselines(test, faint)
    if args.jsonl:
        with open(args.jsonl, "a") as f:
            f.writelines(json.dumps({**r, "tag": "baseline"}) + "\n" for r in rows)
    archive, truth = load_archive(args)
    for n in [int(v) for v in args.labels.split(",")]:
        for seed in [int(v) for v in args.seeds.split(",")]:
            rows.extend(run_methods(args, n, seed, archive, truth, test, faint))
    if any(r["method"] == "dedoppler" for r in rows):
        print(table(rows))
    print(f"total {time.perf_counter() - t0:.0f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
