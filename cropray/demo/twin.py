"""The demo's archive step and its choice: which of physics, the labels-only bundle and the
archive-trained twin scores the archive.

Where the archive enters, and why there: the sweep (Ray Tune, many trials) stays labels-only, so its
cost does not grow; only the retrain of the winner is done twice -- once on the labels alone (the
sweep's own bundle) and once with the archive's injected crops (`train_and_bundle` with the archive),
both cross-validated on the same folds (same labels, seed and k): the winning trial's out-of-fold
scores, and the twin's own cross-validation, run here so its out-of-fold scores are kept.

The choice is `cropray train`'s paired rule (cropray.train.select): candidates cheapest first --
`dedoppler` (label-free), labels only, labels + archive -- and a candidate replaces the cheaper
incumbent only when its paired ROC-AUC gain on the same out-of-fold crops has a 95% lower bound above
zero. When neither learned bundle proves a gain over physics, `dedoppler` ships.
"""

from __future__ import annotations

import numpy as np

from cropray.demo.config import DemoConfig

CANDIDATES = ("dedoppler", "without", "with")  # cheapest first: the order the paired rule judges them in
NAMES = {"dedoppler": "dedoppler (label-free)", "without": "the labels-only bundle",
         "with": "the archive-trained bundle"}


def inject_config(cfg: DemoConfig):
    from cropray.inject import InjectConfig

    return InjectConfig(archive_crops=cfg.archive_crops, seed=cfg.seed, per_epoch=cfg.archive_per_epoch,
                        min_backgrounds=min(500, max(1, cfg.archive_crops // 4)))


def archive_crops(cfg: DemoConfig, ls, paths: dict, log) -> tuple:
    """(ExtraCrops, summary): the demo archive's backgrounds, screened and injected (as `cropray train`)."""
    from cropray.train.archive_data import archive_extra

    return archive_extra(str(paths["archive"]), ls.x, ls.y, inject_config(cfg), say=log)


def train_with_archive(cfg: DemoConfig, sweep, tcfg, ls, crops: tuple, paths: dict, log) -> tuple[dict, np.ndarray]:
    """The sweep's best config cross-validated and retrained with the archive's crops into
    paths["with_archive"]: (its TrainResult dict, its out-of-fold scores (N,) on the labels' folds)."""
    from cropray.train import PriorWork, TrainConfig, TrainJob, train_and_bundle
    from cropray.train.cv import cross_validate
    from cropray.train.fit import resolve

    best = sweep.best
    rcfg = resolve(TrainConfig.from_dict(best.config), len(ls.y))
    cv = cross_validate(rcfg, ls.x, ls.y, k=tcfg.folds, snr=ls.snr, progress=False, extra=crops[0])
    job = TrainJob(labels=paths["labels"], out=paths["with_archive"], config=TrainConfig.from_dict(best.config),
                   folds=tcfg.folds, overwrite=True, progress=False, archive=str(paths["archive"]),
                   inject=inject_config(cfg), target_fpr=cfg.target_fpr,
                   extra={"demo": {"labels_only_twin": sweep.bundle.path, "best_trial": best.trial_id}})
    r = train_and_bundle(job, PriorWork(labeled=ls, cv=cv, archive=crops), log=log)
    return r.to_dict(), cv.oof_scores


def labels_only_oof(sweep, tcfg, ls) -> np.ndarray:
    """Out-of-fold scores (N,) of the sweep's best config on the labels alone: the winning trial's own
    (kept in its record) when they fit these labels and folds, else a cross-validation here."""
    from pathlib import Path

    from cropray.train import TrainConfig
    from cropray.train.cv import cross_validate
    from cropray.train.fit import resolve
    from cropray.tune.sweep import trial_cv

    cv, _ = trial_cv(Path(sweep.out), ls, sweep.best, tcfg)
    if cv is None:
        rcfg = resolve(TrainConfig.from_dict(sweep.best.config), len(ls.y))
        cv = cross_validate(rcfg, ls.x, ls.y, k=tcfg.folds, snr=ls.snr, progress=False)
    return cv.oof_scores


def dedoppler_metrics(path) -> dict:
    """The label-free baseline on a labelled set: binary_metrics (ROC-AUC, recall@1%FPR, ...) with
    intervals. On the training labels it is the figure to set beside a CV ROC-AUC (nothing is trained)."""
    from cropray.archive import read_labeled
    from cropray.evaluate.job import score_array
    from cropray.evaluate.metrics import binary_metrics
    from cropray.models import build_model
    from cropray.models.policy import baseline_arch

    ls = read_labeled(path)
    s = score_array(build_model(baseline_arch()), ls.x)
    return binary_metrics(ls.y, s, float(np.median(s)), n_boot=1000, seed=0)


def choose(y, physics, without, with_=None, *, seed: int = 0) -> tuple[str, str, dict]:
    """(one of CANDIDATES, why, {candidate: its paired ROC-AUC gain over physics}) by the paired rule on
    the same labelled crops y (N,): physics (N,) the label-free scores, without / with_ (N,) the
    out-of-fold scores of the labels-only / archive-trained model (with_ None: no twin)."""
    from cropray.train.select import CI, select

    keys = [k for k, s in zip(CANDIDATES, (physics, without, with_)) if s is not None]
    rank, recs = select(y, [np.asarray(s, np.float64) for s in (physics, without, with_) if s is not None],
                        seed=seed)
    gains = {k: r["vs_baseline"] for k, r in zip(keys[1:], recs[1:])}

    def fig(g: dict) -> str:
        return f"{g['gain']:+.4f} [{g['lo']:+.4f}, {g['hi']:+.4f}]"

    vs = "; ".join(f"{NAMES[k]} {fig(g)}" for k, g in gains.items())
    rule = f"paired ROC-AUC gains over dedoppler on the same out-of-fold crops ({CI:.0%}): {vs}"
    chosen = keys[rank]
    if chosen == "dedoppler":
        return chosen, f"dedoppler ships: no learned bundle proves a gain over it ({rule})", gains
    g, inc = recs[rank]["vs_incumbent"], keys[recs[rank]["incumbent"]]
    why = f"{NAMES[chosen]} ships: its paired gain over {NAMES[inc]} is {fig(g)}, above zero ({rule})"
    if chosen == "without" and len(keys) == 3:
        why += f"; {NAMES['with']}'s gain over it is {fig(recs[2]['vs_incumbent'])}: not proven, the cheaper one stays"
    return chosen, why, gains


def comparison(sweep_bundle: dict, twin: dict | None, ev_without: dict, ev_with: dict | None, dd_fresh: dict,
               dd_labels: dict, choice: dict) -> dict:
    """The with/without/dedoppler table the page and the summary show (CV on the labels, eval on fresh
    crops); choice: {"chosen", "reason", "gains"} (`choose`)."""
    def row(cv, ev, seconds=None):
        m = (ev or {}).get("metrics", {})
        return {"cv_roc_auc": cv, "roc_auc": m.get("roc_auc"), "recall_at_1pct_fpr": m.get("recall_at_1pct_fpr"),
                "model_id": (ev or {}).get("model_id"), "seconds": seconds}

    out = {"without": row(sweep_bundle["cv_roc_auc"], ev_without),
           "dedoppler": {"cv_roc_auc": dd_labels["roc_auc"], "roc_auc": dd_fresh["roc_auc"],
                         "recall_at_1pct_fpr": dd_fresh["recall_at_1pct_fpr"], "model_id": "dedoppler", "seconds": 0},
           "chosen": choice["chosen"], "reason": choice["reason"], "gains": choice["gains"]}
    out["without"]["arch"] = sweep_bundle.get("arch")
    if twin is not None:
        out["with"] = row(twin["cv_metrics"]["roc_auc"], ev_with, twin["seconds"])
        out["with"]["bundle"] = twin["bundle"]
        a = twin.get("archive") or {}
        out["archive"] = {k: a.get(k) for k in ("drawn", "excluded", "injected", "plain", "warnings")}
        out["archive"]["settings"] = {k: (a.get("settings") or {}).get(k) for k in ("archive_crops", "per_epoch",
                                                                                    "real_share")}
    out["without"]["bundle"] = sweep_bundle["path"]
    return out
