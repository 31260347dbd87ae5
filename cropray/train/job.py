"""`train_and_bundle`: the whole `cropray train` job as one library call.

read labels -> check counts -> pick the architecture -> k-fold CV (threshold calibrated on the
out-of-fold scores) -> refit on all labels for the CV's median best epoch count -> save the bundle.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cropray.archive import read_labeled
from cropray.bundle import load_bundle, save_bundle
from cropray.errors import CroprayError
from cropray.train.config import TrainConfig
from cropray.train.cv import cross_validate
from cropray.train.fit import check_labels, fit, resolve
from cropray.train.result import TrainResult

CALIBRATION_CROPS = 256  # crops stored in the bundle for int8 calibration (stratified sample)
THRESHOLD_RULE = "Youden's J (max TPR - FPR) on out-of-fold cross-validation scores"


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def check_out_dir(out, overwrite: bool) -> Path:
    """Refuse an existing non-empty output directory unless overwrite (checked before any training)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CroprayError(f"{out}: exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise CroprayError(f"{out}: already exists and is not empty; pass --overwrite to replace it")
    return out


def calibration_sample(x: np.ndarray, y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Up to n crops (N', 1, H, W) float32, both classes in their labelled proportion."""
    rng = np.random.default_rng(seed)
    take = min(n, len(y))
    idx = np.concatenate([rng.permutation(np.flatnonzero(y == c))[: max(1, round(take * np.mean(y == c)))]
                          for c in (0, 1)])
    return np.ascontiguousarray(x[np.sort(idx)[:take]], dtype=np.float32)


def train_and_bundle(labels_path, out, cfg: TrainConfig | None = None, *, k: int | None = None,
                     crop_shape=None, overwrite: bool = False, progress: bool | None = None,
                     cv_result=None, prepared_archive=None,
                     log: Callable[[str], None] | None = _stderr, extra: dict | None = None,
                     archive=None, inject=None, compare: bool = True, labeled=None,
                     self_train=None, path_cv: bool = True) -> TrainResult:
    """Train on the labelled archive at `labels_path` and write a bundle to `out`; return the typed
    result (cropray.train.result.TrainResult: bundle path and model id, architecture, label counts,
    skipped rows, CV metrics with intervals, threshold, epochs, seconds). `labeled`: the LabeledSet
    already read from `labels_path` by the caller (a sweep's refit), so the archive is read once per job.
    CroprayError for unusable input (before any training).
    `extra` (JSON-able) goes into the bundle manifest as is (e.g. the sweep that chose the config).
    `cv_result`: a CVResult of `cfg` on these labels and folds already run by the caller (a sweep's
    winning trial, checked by cropray.tune.oof): no cross-validation here, only the refit.
    `prepared_archive`: (ExtraCrops, summary) the caller already built from `archive` (a sweep's driver).
    `archive` (with `inject`, a cropray.inject.InjectConfig): also train on crops injected into that
    archive's backgrounds (cropray.train.archive_data); folds, threshold and metrics stay real-only.
    `compare` (default) with arch auto: cross-validate the label count's candidates (with and without
    the archive) and dedoppler on the same folds and keep the best (cropray.train.auto); False: only
    the label count's default architecture.
    `self_train` (a cropray.train.self_train.SelfTrainConfig; needs `archive`): FixMatch-style
    pseudo-labels on archive crops, one teacher per CV fold so the CV stays honest, kept only when its
    CV ROC-AUC beats the base CV's (cropray.train.self_train_cv).
    `path_cv`: score each fold's held-out crops through every quick execution path with that fold's
    model and record each path's CV ROC-AUC, threshold and admissibility in the bundle
    (cropray.fastpath.path_cv; False: fp32 only, as bundles before it)."""
    t0 = time.perf_counter()
    cfg = cfg or TrainConfig()
    say = log or (lambda _m: None)
    if self_train is not None and archive is None:  # checked before any training
        raise CroprayError("self-training needs an unlabelled archive to pseudo-label (--archive ARCHIVE)")
    out = check_out_dir(out, overwrite)
    ls = labeled if labeled is not None else read_labeled(labels_path, crop_shape=crop_shape)
    counts = check_labels(ls.y, where=str(labels_path))
    invalid_rows = int(sum(ls.invalid.values()))
    rcfg = resolve(cfg, len(ls.y))
    crops, archive_info = None, None
    if archive is not None:
        crops, archive_info = prepared_archive or _archive_crops(archive, inject, ls, rcfg.seed, crop_shape, say)
    say(f"{len(ls.y)} labels ({counts[1]} signal, {counts[0]} not; {invalid_rows} invalid rows skipped) "
        f"-> {rcfg.arch}")
    rcfg, cv, crops, comparison = _choose_cv(cfg, rcfg, ls, k=k, crops=crops, compare=compare,
                                             cv_result=cv_result, progress=progress, say=say)
    final_epochs, res = _refit(rcfg, ls, cv, crops, progress, say)
    if self_train is not None:  # per-fold teachers; cv and res change only when the labels say it helps
        from cropray.train.self_train_cv import self_train_step

        cv, res, st_info = self_train_step(rcfg, ls, cv, res, crops, self_train, archive=archive, inject=inject,
                                           crop_shape=crop_shape, progress=progress, say=say)
        archive_info["self_training"] = st_info
    summary_train = _summary(labels_path, ls, counts, rcfg, cv, res, final_epochs)
    if archive_info is not None:  # injection settings, archive fingerprint, background counts
        summary_train["archive"] = {**archive_info, "used_by_model": crops is not None}
    if comparison is not None:
        summary_train["auto_comparison"] = comparison
    paths_rec = None  # each execution path's own CV ROC-AUC and threshold (cropray.fastpath.path_cv)
    if path_cv and cv.fold_models:  # a sweep's reused CV result carries no fold models: fp32 only
        from cropray.fastpath.path_cv import path_aware_cv

        paths_rec = path_aware_cv(cv, ls.x, ls.y, seed=rcfg.seed, log=say)
        summary_train["cv"]["path_cv_seconds"] = paths_rec.seconds
        say(f"path-aware CV ({paths_rec.seconds:.1f} s): admissible for scoring: {', '.join(paths_rec.admissible)}")
    calib = calibration_sample(ls.x, ls.y, CALIBRATION_CROPS, rcfg.seed)
    path = save_bundle(res.model, out, threshold=cv.threshold, train_summary=summary_train,
                       metrics={"cv": cv.metrics}, calibration_crops=calib, extra=extra, overwrite=overwrite,
                       execution_paths=paths_rec)
    b = load_bundle(path)  # verify what was written loads (hashes, architecture) before reporting success
    return TrainResult(**{
        "bundle": str(path), "model_id": b.model_id, "arch": rcfg.arch, "n_labels": int(len(ls.y)),
        "n_read": ls.n_read, "class_counts": summary_train["class_counts"], "invalid_rows": invalid_rows,
        "invalid_reasons": ls.invalid, "k": cv.k, "threshold": cv.threshold, "threshold_rule": THRESHOLD_RULE,
        "cv_metrics": cv.metrics, "final_epochs": final_epochs, "config": rcfg.to_dict(),
        "seconds": round(time.perf_counter() - t0, 2),
        **({"archive": summary_train["archive"]} if archive_info is not None else {}),
        **({"auto_comparison": comparison} if comparison is not None else {}),
    })


def _archive_crops(archive, inject, ls, seed: int, crop_shape, say) -> tuple:
    """(ExtraCrops, summary): backgrounds drawn from `archive`, screened and injected (cropray.inject)."""
    from cropray.inject import InjectConfig
    from cropray.train.archive_data import archive_extra

    crops, info = archive_extra(archive, ls.x, ls.y, inject or InjectConfig(seed=seed), crop_shape=crop_shape,
                                say=say)
    say(f"archive {archive}: {info['drawn']:,} backgrounds drawn, {info['excluded']:,} excluded, "
        f"{info['injected']:,} injected + {info['plain']:,} plain for training")
    return crops, info


def _choose_cv(cfg, rcfg, ls, *, k, crops, compare, cv_result, progress, say) -> tuple:
    """(config, CVResult, archive crops or None, comparison or None): auto's same-folds comparison, the
    caller's CV (a sweep's winning trial), or one cross-validation of `rcfg`."""
    comparison = None
    if compare and cfg.arch == "auto":
        from cropray.train.auto import compare_candidates

        choice = compare_candidates(cfg, ls.x, ls.y, k=k, snr=ls.snr, extra=crops, progress=progress, say=say)
        rcfg, cv, crops = choice.cfg, choice.cv, (crops if choice.with_archive else None)
        comparison = {"candidates": choice.table, "reason": choice.reason}
        say(f"auto: {choice.reason}")
    elif cv_result is not None:  # the caller ran this very CV (same config, labels, folds)
        cv = cv_result
    else:
        cv = cross_validate(rcfg, ls.x, ls.y, k=k, snr=ls.snr, progress=progress, extra=crops)
    return rcfg, cv, crops, comparison


def _refit(rcfg, ls, cv, crops, progress, say) -> tuple:
    """(epochs, FitResult): the refit on all labels for the CV's median best epoch count."""
    m = cv.metrics
    say(f"{cv.k}-fold CV: ROC-AUC {m['roc_auc']['value']:.3f} [{m['roc_auc']['lo']:.3f}, "
        f"{m['roc_auc']['hi']:.3f}], threshold {cv.threshold:.4g}; refitting on all labels")
    final_epochs = max(1, int(np.median(cv.best_epochs))) if rcfg.epochs > 0 else 0
    res = fit(rcfg, ls.x, ls.y, epochs=final_epochs, progress=progress, extra=crops, stage=f"refit {rcfg.arch}")
    return final_epochs, res


def _summary(labels_path, ls, counts, rcfg, cv, res, final_epochs) -> dict:
    """The manifest's `train_summary` (before the archive and comparison parts)."""
    return {
        "labels": str(labels_path), "files": ls.files, "n_read": ls.n_read, "n_labels": int(len(ls.y)),
        "class_counts": {"signal": counts[1], "not_signal": counts[0]},
        "invalid_rows": int(sum(ls.invalid.values())), "invalid_reasons": ls.invalid,
        "duplicate_crop_ids": int(getattr(ls, "duplicates", 0)), "input_shape": list(ls.x.shape[2:]),
        "config": rcfg.to_dict(), "threshold_rule": THRESHOLD_RULE,
        "cv": {"k": cv.k, "fold_auc": cv.fold_auc, "best_epochs": cv.best_epochs, "seconds": round(cv.seconds, 2),
               "epochs_run": len(cv.history), "stopped_by_plateau": cv.stopped_by_plateau},
        "final_epochs": final_epochs, "final_fit_seconds": round(res.seconds, 2),
    }
