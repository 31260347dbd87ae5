"""Which model a sweep ships: its winner only when the labels prove it beats physics, else `dedoppler`.

The sweep ranks its trials by their cross-validated figure, and the best of many noisy CV figures is
biased upward (the winner's curse). So the winner faces the same rule as `cropray train --arch auto`
(cropray.train.select): its out-of-fold scores and the label-free baseline's scores on the same
labelled crops give a paired ROC-AUC gain with a stratified bootstrap interval; the winner ships only
when the interval's lower end is above zero. Otherwise the bundle is the label-free baseline, its
threshold set by the same rule `cropray train` would use (Youden's J on its scores, or the target
false-alarm rate on held-back archive backgrounds).

The baseline needs no folds (nothing is trained), so its "cross-validation" is its scores on every
labelled crop, assigned to the folds `cropray train` draws: `physics_cv` builds that CVResult without
running cross_validate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cropray.tune.oof import cv_from_record, fingerprint, fold_assignment


def baseline_scores(x: np.ndarray) -> np.ndarray:
    """(N,) float64 scores of the label-free baseline on crops x (N, 1, H, W) raw power."""
    from cropray.evaluate.job import score_array
    from cropray.models import build_model
    from cropray.models.policy import baseline_arch

    return score_array(build_model(baseline_arch()), x).astype(np.float64)


def gain_over_physics(y, oof_scores, physics: np.ndarray, seed: int) -> dict:
    """The paired ROC-AUC gain of out-of-fold scores (N,) over the baseline's scores (N,) on the same
    labelled crops y (N,): {gain, lo, hi, n_boot, ci, proven} (cropray.train.select; seeded as train's)."""
    from cropray.train.select import paired_auc_gain

    return paired_auc_gain(y, oof_scores, physics, seed=seed).to_dict()


def physics_cv(x: np.ndarray, y: np.ndarray, scores: np.ndarray, *, k: int | None, seed: int, snr=None):
    """CVResult of the label-free baseline on (x, y): its scores (N,) as the out-of-fold scores on the
    folds `cropray train` draws (k, seed), Youden's threshold on them, metrics with intervals."""
    from cropray.evaluate.metrics import calibrate_threshold
    from cropray.models.policy import baseline_arch
    from cropray.train import TrainConfig
    from cropray.train.cv import choose_k
    from cropray.train.fit import resolve

    y = np.asarray(y).astype(np.int64)
    s = np.asarray(scores, np.float64)
    cfg = resolve(TrainConfig(arch=baseline_arch(), seed=seed), len(y))
    kk = choose_k(y) if k is None else int(k)
    rec = {"fingerprint": fingerprint(x, y), "k": kk, "seed": int(seed), "scores": [float(v) for v in s],
           "fold": fold_assignment(y, kk, seed).tolist(), "best_epochs": [0] * kk,
           "threshold": float(calibrate_threshold(y, s)), "variants": {}}
    cv, why = cv_from_record(rec, cfg, x, y, k=kk, snr=snr)
    if cv is None:  # the record is built here to fit: a failure is a bug, not bad input
        raise RuntimeError(f"physics CV record rejected: {why}")
    return cv


def ship_physics(labels, out: str | Path, ls, *, folds: int | None, seed: int, crop_shape=None, archive=None,
                 inject=None, prior_archive=None, target_fpr: float | None = None, extra: dict | None = None,
                 log=None):
    """Write the label-free baseline's bundle to `out` (replacing what is there) the way `cropray train`
    ships it: threshold by Youden's J on its scores, or with `target_fpr` (needs `archive`) the score that
    fraction of held-back screened archive backgrounds exceed. Returns the TrainResult."""
    from cropray.models.policy import baseline_arch
    from cropray.train import PriorWork, TrainConfig, TrainJob, train_and_bundle

    cv = physics_cv(ls.x, ls.y, baseline_scores(ls.x), k=folds, seed=seed, snr=ls.snr)
    use_archive = archive if target_fpr is not None else None  # only the threshold reads it: nothing trains
    job = TrainJob(labels=labels, out=out, config=TrainConfig(arch=baseline_arch(), seed=seed), folds=folds,
                   crop_shape=crop_shape, overwrite=True, progress=False, extra=extra, archive=use_archive,
                   inject=inject if use_archive else None, target_fpr=target_fpr, compare=False, path_cv=False)
    prior = PriorWork(labeled=ls, cv=cv, archive=prior_archive if use_archive else None)
    return train_and_bundle(job, prior, log=log)
