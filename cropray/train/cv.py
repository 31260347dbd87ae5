"""Stratified k-fold cross-validation with the k folds trained in lockstep, one epoch at a time.

Lockstep lets `on_epoch(epoch, {"cv_auc": ...})` report a cross-validated number after every epoch, so a
sweep scheduler (ASHA) can stop a poor configuration early on a metric that is not one small split's
noise. Each fold early-stops on its own inner validation split (carved from its training part, never
from its held-out part); the held-out scores kept for a fold are those of its best weights so far, so
`cv_auc` at epoch e is what stopping every fold at e would give. All folds stop together when the
pooled inner-validation ROC-AUC (every fold's kept weights on its own validation split, pooled) has
plateaued (`cfg.cv_patience`, cropray.train.budget.CVPlateau). No stop reads a held-out fold: a stop
chosen on the held-out scores would select a lucky epoch and flatter the CV figure that later
decides which candidate ships.

k rule: k = min(5, minority class count), at least 2 (every held-out fold gets both classes).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from cropray.errors import CroprayError
from cropray.evaluate.metrics import binary_metrics, calibrate_threshold, snr_recall
from cropray.train.budget import CVPlateau
from cropray.train.config import TrainConfig
from cropray.train.fit import resolve, stratified_split
from cropray.train.loop import Trainer
from cropray.train.progress import Progress

MAX_K = 5


@dataclass
class CVResult:
    cfg: TrainConfig  # resolved configuration
    k: int
    oof_scores: np.ndarray  # (N,) each crop scored by the fold model that did not see it
    fold: np.ndarray  # (N,) fold index of each crop's held-out fold
    threshold: float  # calibrated on oof_scores (Youden's J)
    metrics: dict  # binary_metrics on the out-of-fold scores + fold spread (+ snr_recall, gallery rules)
    fold_auc: list[float]
    best_epochs: list[int]  # per fold: epochs to its kept weights
    history: list[dict] = field(default_factory=list)  # per epoch: what on_epoch received
    seconds: float = 0.0
    stopped_by_callback: bool = False
    stopped_by_plateau: bool = False  # every fold stopped by the CV plateau rule (cfg.cv_patience)
    # per fold: the model (eval mode, best weights, finalized on that fold's labelled training crops)
    # whose held-out scores are oof_scores[fold == i]; in-process only, never serialised
    fold_models: list = field(default_factory=list, repr=False)


def choose_k(y) -> int:
    """min(5, minority class count), at least 2."""
    minority = int(min((np.asarray(y) == 0).sum(), (np.asarray(y) == 1).sum()))
    if minority < 2:
        raise CroprayError(f"cross-validation needs >= 2 crops of each class; the minority class has {minority}")
    return max(2, min(MAX_K, minority))


def cross_validate(cfg: TrainConfig, x, y, *, k: int | None = None, snr=None,
                   on_epoch: Callable[[int, dict], Any] | None = None, progress: bool | None = None,
                   n_boot: int = 1000, extra=None) -> CVResult:
    """k-fold stratified CV of `cfg` on x (N, 1, H, W), y (N,). on_epoch(epoch, metrics) is called after
    every lockstep epoch with metrics = {"cv_auc", "cv_auc_std", "val_auc", "train_loss", "folds_active",
    "epoch"}; a truthy return stops all folds (e.g. a scheduler's decision). extra (ExtraCrops): archive
    crops added to every fold's training part only; held-out folds, validation splits, the threshold
    and every metric use the real labelled crops alone."""
    t0 = time.perf_counter()
    y = np.asarray(y).astype(np.int64)
    cfg = resolve(cfg, len(y))
    k = choose_k(y) if k is None else int(k)
    if not 2 <= k <= min(np.bincount(y, minlength=2)):
        raise CroprayError(f"k={k} folds impossible with class counts {np.bincount(y, minlength=2).tolist()}")
    folds = list(StratifiedKFold(n_splits=k, shuffle=True, random_state=cfg.seed).split(np.zeros(len(y)), y))
    trainers, held, vals = [], [], []
    for i, (tr_idx, te_idx) in enumerate(folds):
        seed = cfg.seed + 1000 * (i + 1)  # distinct, reproducible per fold
        fit_idx, val_idx = tr_idx, None
        if cfg.epochs > 0:
            a, b = stratified_split(y[tr_idx], cfg.val_fraction, seed)
            fit_idx, val_idx = tr_idx[a], tr_idx[b]
        trainers.append(Trainer(cfg, x[fit_idx], y[fit_idx],
                                None if val_idx is None else x[val_idx],
                                None if val_idx is None else y[val_idx], seed=seed, extra=extra))
        held.append(te_idx)
        vals.append(None if val_idx is None else (x[val_idx], y[val_idx]))
    oof = np.zeros(len(y), np.float64)
    rules_oof: dict[str, np.ndarray] = {}  # the model's alternative scoring rules, e.g. Siamese gallery rules
    fold_of = np.zeros(len(y), np.int64)

    def score_fold(i: int) -> None:
        t, te = trainers[i], held[i]
        t.finalize()
        oof[te] = t.predict(x[te])
        fold_of[te] = i
        for rule, s in t.predict_variants(x[te]).items():
            rules_oof.setdefault(rule, np.zeros(len(y)))[te] = s

    if all(t.done for t in trainers):  # untrained baseline: score once
        for i in range(k):
            score_fold(i)
    history, stopped_cb, stopped_pl = lockstep(cfg, trainers, vals, y, oof, held, score_fold, on_epoch, progress)
    fold_models = []
    for t in trainers:  # the weights that produced each fold's out-of-fold scores
        t.use_best()
        fold_models.append(t.model)
    threshold = calibrate_threshold(y, oof)
    metrics = binary_metrics(y, oof, threshold, n_boot=n_boot, seed=cfg.seed)
    fold_auc = [_auc(y[te], oof[te]) for te in held]
    metrics["fold_auc_mean"] = float(np.mean(fold_auc))
    metrics["fold_auc_std"] = float(np.std(fold_auc))
    metrics["k"] = k
    if snr is not None:
        metrics["snr_recall"] = snr_recall(y, oof, snr, threshold)
    if rules_oof:  # which rule ranks best on the same out-of-fold outputs (Siamese: gallery rules)
        metrics[trainers[0].model.variants_metric] = {r: float(roc_auc_score(y, s)) for r, s in rules_oof.items()}
    return CVResult(cfg=cfg, k=k, oof_scores=oof, fold=fold_of, threshold=threshold, metrics=metrics,
                    fold_auc=fold_auc, best_epochs=[t.best_epoch for t in trainers], history=history,
                    seconds=time.perf_counter() - t0, stopped_by_callback=stopped_cb,
                    stopped_by_plateau=stopped_pl, fold_models=fold_models)


def lockstep(cfg: TrainConfig, trainers, vals, y, oof, held, score_fold, on_epoch=None,
             progress: bool | None = None) -> tuple[list, bool, bool]:
    """Advance every unfinished fold one epoch at a time until all are done, the pooled inner-validation
    ROC-AUC plateaus (cfg.cv_patience) or on_epoch returns truthy.

    vals: per fold (x_val (V, 1, H, W) raw, y_val (V,)) or None: the fold's own inner validation split,
    the only data the plateau stop reads. oof (N,): out-of-fold scores, updated by score_fold(i) when
    fold i improves; they are reported (history's cv_auc, on_epoch) but never decide a stop here.
    -> (history, stopped by callback, stopped by plateau)."""
    k = len(trainers)
    history: list[dict] = []
    plateau = CVPlateau(cfg.cv_patience or 0, cfg.min_epochs)
    val_scores: list = [None] * k  # per fold: its kept weights' scores on its own validation split
    with Progress(cfg.epochs, f"cv {cfg.arch} k={k}", progress, folds=k) as bar:
        epoch = 0
        while not all(t.done for t in trainers):
            epoch += 1
            stats = []
            active = sum(not t.done for t in trainers)
            for i, t in enumerate(trainers):
                if t.done:
                    continue
                st = t.run_epoch()
                stats.append(st)
                if st.improved:
                    score_fold(i)
                    if vals[i] is not None:  # the kept weights' scores, as the held-out ones are kept
                        val_scores[i] = t.predict(vals[i][0])
                bar.tick(epoch, len(stats), active)
            aucs = [_auc(y[te], oof[te]) for te in held]
            pooled = [(v[1], s) for v, s in zip(vals, val_scores) if v is not None and s is not None]
            inner = pooled_auc([p[0] for p in pooled], [p[1] for p in pooled])
            m = {"epoch": epoch, "cv_auc": float(np.mean(aucs)), "cv_auc_std": float(np.std(aucs)),
                 "inner_val_auc": inner, "val_auc": _mean([s.val_auc for s in stats]),
                 "train_loss": _mean([s.train_loss for s in stats]), "folds_active": len(stats)}
            history.append(m)
            bar.epoch_done(best=m["cv_auc"], cv_auc=f"{m['cv_auc']:.3f}")
            if on_epoch is not None and on_epoch(epoch, m):
                return history, True, False
            if inner is not None and plateau.update(epoch, inner) and not all(t.done for t in trainers):
                return history, False, True
    return history, False, False


def pooled_auc(ys: list, scores: list) -> float | None:
    """ROC-AUC of the folds' inner-validation scores pooled (None when the pool lacks a class)."""
    if not ys:
        return None
    y, s = np.concatenate(ys), np.concatenate(scores)
    return _auc(y, s) if 0 < y.sum() < len(y) else None


def _auc(y, s) -> float:
    return float(roc_auc_score(y, s))


def _mean(v) -> float | None:
    v = [a for a in v if a is not None]
    return float(np.mean(v)) if v else None
