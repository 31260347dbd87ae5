"""`train_and_bundle(job)`: the whole `cropray train` job as one library call.

read labels -> check counts -> [archive crops; hold back screened backgrounds for a target-FPR
threshold] -> the job's CV strategy (cropray.train.strategies: auto comparison with the paired rule,
a caller's CV, or plain CV) -> refit on all labels for the CV's median best epoch count -> [self-training]
-> threshold (Youden on the out-of-fold scores, or the target false-alarm rate on the held-back
backgrounds, cropray.train.threshold) -> save the bundle, verify it loads.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cropray.errors import CroprayError
from cropray.train.calibration import CALIBRATION_CROPS, calibration_sample
from cropray.train.fit import check_labels, fit, resolve
from cropray.train.jobspec import PriorWork, TrainJob
from cropray.train.result import TrainResult
from cropray.train.strategies import strategy_for
from cropray.train.threshold import fpr_rule, youden_rule

__all__ = ["CALIBRATION_CROPS", "PriorWork", "TrainJob", "calibration_sample", "check_out_dir", "train_and_bundle"]


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


def train_and_bundle(job: TrainJob, prior: PriorWork | None = None, *,
                     log: Callable[[str], None] | None = _stderr) -> TrainResult:
    """Run `job` (cropray.train.jobspec.TrainJob) and return the typed result (cropray.train.result:
    bundle path and model id, architecture, label counts, skipped rows, CV metrics with intervals, the
    candidates' paired gains, threshold and its rule, epochs, seconds). `prior`: work the caller already
    did (PriorWork: the labels read, a sweep's CV, the prepared archive crops). CroprayError for
    unusable input, before any training."""
    from cropray.archive import read_labeled
    from cropray.bundle import load_bundle, save_bundle

    t0 = time.perf_counter()
    prior = prior or PriorWork()
    say = log or (lambda _m: None)
    out = check_out_dir(job.out, job.overwrite)
    ls = prior.labeled if prior.labeled is not None else read_labeled(job.labels, crop_shape=job.crop_shape)
    counts = check_labels(ls.y, where=str(job.labels))
    invalid_rows = int(sum(ls.invalid.values()))
    rcfg = resolve(job.config, len(ls.y))
    crops, archive_info, bg_x = None, None, None
    if job.archive is not None:
        crops, archive_info = prior.archive or _archive_crops(job, ls, rcfg.seed, say)
        if job.target_fpr is not None:  # held back before any candidate trains: no model learns them
            from cropray.train.archive_data import threshold_backgrounds

            crops, bg_x = threshold_backgrounds(crops, rcfg.seed)
            archive_info = {**archive_info, "held_back_for_threshold": int(len(bg_x))}
    say(f"{len(ls.y)} labels ({counts[1]} signal, {counts[0]} not; {invalid_rows} invalid rows skipped) "
        f"-> {rcfg.arch}")
    chosen = strategy_for(job.config, job.compare, prior.cv).run(rcfg, ls, crops, k=job.folds,
                                                                 progress=job.progress, say=say)
    rcfg, cv, crops = chosen.cfg, chosen.cv, chosen.crops
    final_epochs, res = _refit(rcfg, ls, cv, crops, job.progress, say)
    if job.self_train is not None:  # per-fold teachers; cv and res change only when the labels say it helps
        from cropray.train.self_train_cv import self_train_step

        cv, res, st_info = self_train_step(rcfg, ls, cv, res, crops, job.self_train, archive=job.archive,
                                           inject=job.inject, crop_shape=job.crop_shape, progress=job.progress,
                                           say=say)
        archive_info["self_training"] = st_info
    threshold, rule = _threshold(job, cv, res.model, bg_x, say)
    gain = _gain_vs_physics(rcfg, cv, ls, chosen.comparison if cv is chosen.cv else None, say)
    summary_train = _summary(job.labels, ls, counts, rcfg, cv, res, final_epochs, rule)
    summary_train["gain_vs_physics"] = gain
    if archive_info is not None:  # injection settings, archive fingerprint, background counts
        summary_train["archive"] = {**archive_info, "used_by_model": crops is not None and res.model.trainable}
    if chosen.comparison is not None:
        summary_train["auto_comparison"] = chosen.comparison
    paths_rec = _path_cv(job, cv, ls, rcfg.seed, summary_train, threshold, say)
    calib = calibration_sample(ls.x, ls.y, CALIBRATION_CROPS, rcfg.seed)
    path = save_bundle(res.model, out, threshold=threshold, train_summary=summary_train,
                       metrics={"cv": cv.metrics}, calibration_crops=calib, extra=job.extra,
                       overwrite=job.overwrite, execution_paths=paths_rec,
                       graph=_graph(res.model, calib, ls.x.shape[-2:], say))
    b = load_bundle(path)  # verify what was written loads (hashes, architecture) before reporting success
    return TrainResult(**{
        "bundle": str(path), "model_id": b.model_id, "arch": rcfg.arch, "n_labels": int(len(ls.y)),
        "n_read": ls.n_read, "class_counts": summary_train["class_counts"], "invalid_rows": invalid_rows,
        "invalid_reasons": ls.invalid, "k": cv.k, "threshold": threshold, "threshold_rule": rule["how"],
        "threshold_detail": rule, "gain_vs_physics": gain, "cv_metrics": cv.metrics, "final_epochs": final_epochs,
        "config": rcfg.to_dict(), "seconds": round(time.perf_counter() - t0, 2),
        **({"archive": summary_train["archive"]} if archive_info is not None else {}),
        **({"auto_comparison": chosen.comparison} if chosen.comparison is not None else {}),
    })


def _graph(model, calib, shape, say):
    """The fp32 ONNX graph exported now, so a scoring actor only loads it (None: the model or this install
    cannot export; the actor then exports on first use and caches it)."""
    from cropray.fastpath.export import make_pack

    if not model.trainable:
        return None  # label-free (dedoppler): the numpy runtime scores it, no graph
    try:
        return make_pack(model, calib, tuple(shape))
    except Exception as e:  # noqa: BLE001 - the bundle stays usable without it
        say(f"the ONNX graph was not bundled ({type(e).__name__}: {str(e)[:160]}); scoring exports it on first use")
        return None


def _archive_crops(job: TrainJob, ls, seed: int, say) -> tuple:
    """(ExtraCrops, summary): backgrounds drawn from the job's archive, screened and injected (cropray.inject)."""
    from cropray.inject import InjectConfig
    from cropray.train.archive_data import archive_extra

    crops, info = archive_extra(job.archive, ls.x, ls.y, job.inject or InjectConfig(seed=seed),
                                crop_shape=job.crop_shape, say=say)
    say(f"archive {job.archive}: {info['drawn']:,} backgrounds drawn, {info['excluded']:,} excluded, "
        f"{info['injected']:,} injected + {info['plain']:,} plain for training")
    return crops, info


def _threshold(job: TrainJob, cv, model, bg_x, say) -> tuple[float, dict]:
    """(the shipped threshold, its rule record for the manifest)."""
    if job.target_fpr is None:
        return cv.threshold, youden_rule(cv.threshold)
    from cropray.evaluate.job import score_array

    thr, rule, warnings = fpr_rule(score_array(model.cpu(), bg_x), job.target_fpr, cv.threshold)
    for w in warnings:
        say(f"warning: {w}")
    rule["warnings"] = warnings
    say(f"threshold {thr:.4g}: {rule['how']} (Youden's on the CV would be {cv.threshold:.4g})")
    return thr, rule


def _gain_vs_physics(rcfg, cv, ls, comparison: dict | None, say) -> dict | None:
    """The shipped model's paired ROC-AUC gain over the label-free baseline on the same out-of-fold crops
    (cropray.train.select), with its interval; None when the shipped model is label-free. The auto
    comparison measured it already (`comparison`, when its CV is the shipped one: self-training may
    replace it); otherwise the baseline scores every label (it needs no folds)."""
    from cropray.models.policy import arch_spec, baseline_arch

    if arch_spec(rcfg.arch).fit_free:
        return None
    if comparison is not None:
        row = next(c for c in comparison["candidates"] if c["chosen"])
        if row.get("gain_vs_physics") is not None:
            return row["gain_vs_physics"]
    from cropray.evaluate.job import score_array
    from cropray.models import build_model
    from cropray.train.select import paired_auc_gain

    g = paired_auc_gain(ls.y, cv.oof_scores, score_array(build_model(baseline_arch()), ls.x), seed=rcfg.seed).to_dict()
    if not g["proven"]:
        say(f"warning: {rcfg.arch}'s paired ROC-AUC gain over {baseline_arch()} on the same crops is "
            f"{g['gain']:+.4f} [{g['lo']:+.4f}, {g['hi']:+.4f}]: not proven (`--arch auto` would ship {baseline_arch()})")
    return g


def _path_cv(job: TrainJob, cv, ls, seed: int, summary_train: dict, threshold: float, say):
    """Each execution path's own CV ROC-AUC and threshold (None: fp32 only). A sweep's reused CV carries
    no fold models. Under a target-FPR threshold the paths' own Youden thresholds are replaced by the
    bundle's one threshold, so every path keeps the false-alarm promise."""
    if not (job.path_cv and cv.fold_models):
        return None
    from cropray.train.path_cv import path_aware_cv

    rec = path_aware_cv(cv, ls.x, ls.y, seed=seed, log=say)
    summary_train["cv"]["path_cv_seconds"] = rec.seconds
    say(f"path-aware CV ({rec.seconds:.1f} s): admissible for scoring: {', '.join(rec.admissible)}")
    if job.target_fpr is not None and dataclasses.is_dataclass(rec) and hasattr(rec, "paths"):
        rec = dataclasses.replace(rec, paths={n: q if q.threshold is None else dataclasses.replace(q, threshold=threshold)
                                              for n, q in rec.paths.items()})
    return rec


def _refit(rcfg, ls, cv, crops, progress, say) -> tuple:
    """(epochs, FitResult): the refit on all labels for the CV's median best epoch count."""
    m = cv.metrics
    say(f"{cv.k}-fold CV: ROC-AUC {m['roc_auc']['value']:.3f} [{m['roc_auc']['lo']:.3f}, "
        f"{m['roc_auc']['hi']:.3f}], threshold {cv.threshold:.4g}; refitting on all labels")
    final_epochs = max(1, int(np.median(cv.best_epochs))) if rcfg.epochs > 0 else 0
    res = fit(rcfg, ls.x, ls.y, epochs=final_epochs, progress=progress, extra=crops, stage=f"refit {rcfg.arch}")
    return final_epochs, res


def _summary(labels_path, ls, counts, rcfg, cv, res, final_epochs, rule: dict) -> dict:
    """The manifest's `train_summary` (before the archive and comparison parts)."""
    return {
        "labels": str(labels_path), "files": ls.files, "n_read": ls.n_read, "n_labels": int(len(ls.y)),
        "class_counts": {"signal": counts[1], "not_signal": counts[0]},
        "invalid_rows": int(sum(ls.invalid.values())), "invalid_reasons": ls.invalid,
        "duplicate_crop_ids": int(getattr(ls, "duplicates", 0)), "input_shape": list(ls.x.shape[2:]),
        "config": rcfg.to_dict(), "threshold_rule": rule["how"], "threshold": rule,
        "cv": {"k": cv.k, "fold_auc": cv.fold_auc, "best_epochs": cv.best_epochs, "seconds": round(cv.seconds, 2),
               "epochs_run": len(cv.history), "stopped_by_plateau": cv.stopped_by_plateau,
               "plateau_signal": "pooled inner-validation ROC-AUC (never the held-out folds)"},
        "final_epochs": final_epochs, "final_fit_seconds": round(res.seconds, 2),
    }
