"""The demo's archive step: the sweep's best configuration retrained with crops injected into the
demo's own unlabelled archive, next to the sweep's bundle (the same configuration on the labels alone).

Where the archive enters, and why there: the sweep (Ray Tune, many trials) stays labels-only, so its
cost does not grow; only the retrain of the winner is done twice -- once on the labels alone (the
sweep's own bundle) and once with the archive's injected crops (`train_and_bundle(archive=...)`),
both cross-validated on the same folds (same labels, seed and k). The labels judge: the bundle with
the better CV ROC-AUC is the one that scores the archive (ties within 0.001 go to the labels-only
one, the cheaper), and both are evaluated on the fresh labelled crops next to `dedoppler`.
"""

from __future__ import annotations

import numpy as np

from cropray.demo.config import DemoConfig

TIE = 1e-3  # as cropray.train.auto


def train_with_archive(cfg: DemoConfig, sweep, tcfg, paths: dict, log) -> dict:
    """The sweep's best config retrained with the archive into paths["with_archive"]; its TrainResult dict."""
    from cropray.inject import InjectConfig
    from cropray.train import TrainConfig, TrainJob, train_and_bundle

    best = sweep.best
    icfg = InjectConfig(archive_crops=cfg.archive_crops, seed=cfg.seed, per_epoch=cfg.archive_per_epoch,
                        min_backgrounds=min(500, max(1, cfg.archive_crops // 4)))
    job = TrainJob(labels=paths["labels"], out=paths["with_archive"], config=TrainConfig.from_dict(best.config),
                   folds=tcfg.folds, overwrite=True, progress=False, archive=str(paths["archive"]), inject=icfg,
                   extra={"demo": {"labels_only_twin": sweep.bundle.path, "best_trial": best.trial_id}})
    r = train_and_bundle(job, log=log)
    return r.to_dict()


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


def choose(without_cv: dict, with_cv: dict | None) -> tuple[str, str]:
    """("with" | "without", why): the better CV ROC-AUC on the same folds, ties to the labels-only model."""
    if with_cv is None:
        return "without", "the archive was not used (--archive-crops 0)"
    a, b = without_cv["value"], with_cv["value"]
    if b > a + TIE:
        return "with", f"CV ROC-AUC {b:.4f} with the archive vs {a:.4f} without, on the same folds"
    return "without", (f"CV ROC-AUC {b:.4f} with the archive vs {a:.4f} without, on the same folds: not better by "
                       f"more than {TIE:g}, so the labels-only model (cheaper) is kept")


def comparison(sweep_bundle: dict, twin: dict | None, ev_without: dict, ev_with: dict | None, dd_fresh: dict,
               dd_labels: dict) -> dict:
    """The with/without table the page and the summary show (CV on the labels, eval on fresh crops)."""
    def row(cv, ev, seconds=None):
        m = (ev or {}).get("metrics", {})
        return {"cv_roc_auc": cv, "roc_auc": m.get("roc_auc"), "recall_at_1pct_fpr": m.get("recall_at_1pct_fpr"),
                "model_id": (ev or {}).get("model_id"), "seconds": seconds}

    chosen, why = choose(sweep_bundle["cv_roc_auc"], twin["cv_metrics"]["roc_auc"] if twin else None)
    out = {"without": row(sweep_bundle["cv_roc_auc"], ev_without),
           "dedoppler": {"cv_roc_auc": dd_labels["roc_auc"], "roc_auc": dd_fresh["roc_auc"],
                         "recall_at_1pct_fpr": dd_fresh["recall_at_1pct_fpr"], "model_id": "dedoppler", "seconds": 0},
           "chosen": chosen, "reason": why}
    if twin is not None:
        out["with"] = row(twin["cv_metrics"]["roc_auc"], ev_with, twin["seconds"])
        out["with"]["bundle"] = twin["bundle"]
        a = twin.get("archive") or {}
        out["archive"] = {k: a.get(k) for k in ("drawn", "excluded", "injected", "plain", "warnings")}
        out["archive"]["settings"] = {k: (a.get("settings") or {}).get(k) for k in ("archive_crops", "per_epoch",
                                                                                    "real_share")}
    out["without"]["bundle"] = sweep_bundle["path"]
    return out
