"""Does `cropray suggest` pick better crops to label than uniform random picks? A measured loop.

Per seed: a synthetic pool (labels hidden, revealed only for picked crops) and a separate test set
(another synth seed). Start from the same 25 random labels (both classes present); each round trains
a model on the labels so far, measures ROC-AUC and recall at 1% FPR on the test set, then adds 25
labels, picked either by the suggest selection or uniformly at random among the unlabelled pool.

The suggest arm runs the very code `cropray suggest` runs, in process: `SuggestFeatures` on the
pool (model features + track statistic), the `Collector` pools and `choose` (k-center) with the
round's model and its calibrated threshold (Youden's J on its validation split). Only the Ray Data
transport is skipped: the rows are the same ones ScoreBatch returns.

  python research/active_learning.py --out research/results/active_learning   # ~1 h on 2 shared cores
  python research/active_learning.py --smoke-test --out /tmp/al   # tiny pool, 1 round, 1 epoch: checks that it runs
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def train_round(x, y, args, seed):
    """(model, threshold): one fit with early stopping on a stratified validation split."""
    from cropray.evaluate.metrics import calibrate_threshold
    from cropray.train.config import TrainConfig
    from cropray.train.fit import fit

    cfg = TrainConfig(arch=args.arch, seed=seed, epochs=args.epochs, patience=max(2, args.epochs // 2),
                      model_kwargs={"channels": [int(c) for c in args.channels.split(",")],
                                    "track_prior": not args.no_track_prior}, device="cpu")
    res = fit(cfg, x, y, progress=False)
    thr = calibrate_threshold(res.val_labels, res.val_scores) if res.val_scores is not None else 0.5
    return res.model.eval(), float(thr)


def predict(model, x, batch=512):
    import torch

    with torch.inference_mode():
        return np.concatenate([model(torch.from_numpy(x[i:i + batch])).float().numpy()
                               for i in range(0, len(x), batch)])


def suggest_picks(model, thr, pool_x, labelled, k, track, seed):
    """Indices of k pool crops picked by the suggest selection (the code `cropray suggest` runs)."""
    from cropray.suggest.collect import Collector
    from cropray.suggest.config import SuggestConfig
    from cropray.suggest.features import SuggestFeatures
    from cropray.suggest.pools import Rows
    from cropray.suggest.select import choose

    cfg = SuggestConfig(n=k, seed=seed)
    fx = SuggestFeatures(model, cfg.features)
    idx_all = np.arange(len(pool_x))
    col = Collector(cfg, thr, probability=True, labelled_ids=[str(i) for i in labelled])
    lab = np.zeros(len(pool_x), bool)
    lab[list(labelled)] = True
    for a in range(0, len(pool_x), 1024):  # blocks, as the pipeline delivers them
        sl = slice(a, a + 1024)
        feat, _ = fx(pool_x[sl])
        score = predict(model, pool_x[sl])
        col.labelled_feat.append(feat[lab[sl]])
        keep = ~lab[sl]
        ids = idx_all[sl][keep]
        col.add(Rows(crop_id=ids.astype(object), unit=np.zeros(len(ids), np.int32), row=ids.astype(np.int64),
                     score=score[keep], track=track[sl][keep], feat=feat[keep]))
    picks = choose(col)
    return [int(i) for i in picks.rows.crop_id], list(picks.reason)


def metrics(y, s):
    from cropray.evaluate.metrics import binary_metrics

    m = binary_metrics(y, s, 0.5, n_boot=0)
    return m["roc_auc"]["value"], m["recall_at_1pct_fpr"]["value"]


def run_seed(seed, args, log):
    from cropray.suggest.features import SuggestFeatures
    from cropray.synth import generate

    pool = generate(args.pool, seed=1000 + seed)
    test = generate(args.test, seed=5000 + seed)
    px, py = pool.crops[:, None].astype(np.float32), pool.label.astype(np.int64)
    tx, ty = test.crops[:, None].astype(np.float32), test.label.astype(np.int64)
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(py == 1), np.flatnonzero(py == 0)
    start = [int(rng.choice(pos)), int(rng.choice(neg))]
    rest = rng.permutation(np.setdiff1d(np.arange(len(py)), start))
    start += [int(i) for i in rest[: args.start - 2]]
    # the label-free track statistic does not depend on the model: once per pool
    _, track = SuggestFeatures(__import__("cropray.models", fromlist=["build_model"]).build_model("dedoppler"), 4)(px)
    rows = []
    for arm in ("suggest", "random"):
        labelled = list(start)
        arm_rng = np.random.default_rng(100 + seed)
        for rnd in range(args.rounds + 1):
            t0 = time.time()
            model, thr = train_round(px[labelled], py[labelled], args, seed)
            auc, rec = metrics(ty, predict(model, tx))
            rows.append(dict(seed=seed, arm=arm, round=rnd, n_labels=len(labelled), roc_auc=auc,
                             recall_1pct=rec, pos_labels=int(py[labelled].sum())))
            if rnd < args.rounds:
                if arm == "suggest":
                    new, why = suggest_picks(model, thr, px, labelled, args.step, track, seed * 100 + rnd)
                    rows[-1]["picked"] = {r: why.count(r) for r in set(why)}
                else:
                    free = np.setdiff1d(np.arange(len(py)), labelled)
                    new = [int(i) for i in arm_rng.choice(free, args.step, replace=False)]
                rows[-1]["picked_pos"] = int(py[new].sum())
                labelled += new
            log(f"seed {seed} {arm:7s} round {rnd} labels {rows[-1]['n_labels']:3d} AUC {auc:.3f} "
                f"R@1% {rec:.3f} ({time.time() - t0:.0f} s)")
    return rows


def table(rows, rounds) -> str:
    lines = ["| round | labels | ROC-AUC suggest | ROC-AUC random | recall@1%FPR suggest | recall@1%FPR random |",
             "|---|---|---|---|---|---|"]
    for r in range(rounds + 1):
        def ms(arm, key, r=r):
            v = np.array([x[key] for x in rows if x["arm"] == arm and x["round"] == r])
            return f"{v.mean():.3f} ± {v.std():.3f}"
        n = next(x["n_labels"] for x in rows if x["round"] == r)
        lines.append(f"| {r} | {n} | {ms('suggest', 'roc_auc')} | {ms('random', 'roc_auc')} | "
                     f"{ms('suggest', 'recall_1pct')} | {ms('random', 'recall_1pct')} |")
    return "\n".join(lines)


def plot(rows, rounds, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, name in zip(axes, ("roc_auc", "recall_1pct"), ("ROC-AUC", "recall at 1% FPR")):
        for arm, c in (("suggest", "tab:blue"), ("random", "tab:gray")):
            n = [next(x["n_labels"] for x in rows if x["round"] == r) for r in range(rounds + 1)]
            v = np.array([[x[key] for x in rows if x["arm"] == arm and x["round"] == r] for r in range(rounds + 1)])
            ax.plot(n, v.mean(1), "o-", color=c, label=arm)
            ax.fill_between(n, v.min(1), v.max(1), color=c, alpha=0.2)
        ax.set_xlabel("labels")
        ax.set_title(f"test {name} (mean, min-max over seeds)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pool", type=int, default=4000)
    p.add_argument("--test", type=int, default=2000)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--seed-list", default=None, help="run only these seeds, e.g. 1,2 (parallel processes)")
    p.add_argument("--merge", default=None, metavar="DIRS",
                   help="comma-separated output dirs of earlier runs: table + plot of all their rows, no training")
    p.add_argument("--start", type=int, default=25)
    p.add_argument("--step", type=int, default=25)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--arch", default="shallow_cnn")
    p.add_argument("--channels", default="16,32,64", help="shallow_cnn widths (smaller than default: 2 CPUs)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--no-track-prior", action="store_true", help="CNN without the de-Doppler logit prior")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="research/results/active_learning")
    p.add_argument("--smoke-test", action="store_true",
                   help="pool 300, test 200, 1 seed, 1 round of +25, 1 epoch, small widths (seconds; CI runs it)")
    args = p.parse_args(argv)
    if args.smoke_test:
        args.pool, args.test, args.seeds, args.rounds, args.epochs, args.channels = 300, 200, 1, 1, 1, "4,8,8"
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    rows = []
    if args.merge:
        for d in args.merge.split(","):
            rows += json.loads((Path(d) / "rounds.json").read_text())["rows"]
    seeds = [] if args.merge else ([int(v) for v in args.seed_list.split(",")] if args.seed_list
                                   else list(range(args.seeds)))
    for s in seeds:
        rows += run_seed(s, args, lambda m: print(m, flush=True))
        (out / "rounds.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))
    plot(rows, args.rounds, out / "active_learning.png")
    md = table(rows, args.rounds)
    (out / "table.md").write_text(md + "\n")
    print(md)
    print(f"total {time.time() - t0:.0f} s; {out}/active_learning.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
