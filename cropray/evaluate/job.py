"""`evaluate_bundle`: the whole `cropray eval` job as one library call."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cropray._result import JobResult
from cropray.archive import read_labeled
from cropray.bundle import load_bundle
from cropray.errors import CroprayError
from cropray.evaluate.report import evaluate_scores, write_report

SCORE_BATCH = 256


@dataclass(frozen=True)
class EvalResult(JobResult):
    """What `evaluate_bundle` returns and `cropray eval --json` prints (its `to_dict()`)."""

    model: str  # the bundle directory
    model_id: str
    arch: str
    labels: str  # the labelled archive evaluated on
    n_read: int  # rows read
    n_labels: int  # valid labelled rows used
    class_counts: dict[str, int]  # signal / not_signal
    invalid_rows: int
    invalid_reasons: dict[str, int]
    threshold: float  # the bundle's decision threshold, at which the metrics are taken
    training_labels: bool  # the set is the one the bundle was trained on (optimistic figures)
    metrics: dict[str, Any]  # name -> {value, lo, hi} (cropray.evaluate.metrics.binary_metrics)
    threshold_here: float  # the Youden-J threshold on this set
    snr_recall: list[dict] | None = None  # recall per SNR bin, when the archive has `snr`
    report: dict | None = None  # {"dir", "files"} of the report directory, when written
    seconds: float = 0.0
    threshold_rule: dict | None = None  # how training set the threshold: {"rule": "youden"} or {"rule":
    #   "target_fpr", "target_fpr": F, "n_backgrounds": n, ...}; None for bundles that predate the record
    fpr_here: float | None = None  # share of this set's negatives at or above the threshold (the false-alarm
    #   rate a target-FPR threshold promises)


@torch.inference_mode()
def score_array(model: torch.nn.Module, x: np.ndarray, batch: int = SCORE_BATCH) -> np.ndarray:
    """Eager fp32 scores (N,) of crops x (N, 1, H, W): the reference the fast paths are checked against."""
    model.eval()
    out = [model(torch.from_numpy(np.ascontiguousarray(x[i:i + batch], dtype=np.float32))).float().numpy()
           for i in range(0, len(x), batch)]
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def evaluate_bundle(model_path, labels_path, *, report: str | Path | None = None, crop_shape=None,
                    n_boot: int = 1000) -> EvalResult:
    """Score a labelled archive with a bundle; metrics (with intervals) at the bundle's threshold,
    per-SNR recall when the archive has `snr`, and optionally a report directory (metrics.json + PNGs)."""
    t0 = time.perf_counter()
    b = load_bundle(model_path)
    ls = read_labeled(labels_path, crop_shape=crop_shape)
    n_pos, n_neg = int((ls.y == 1).sum()), int((ls.y == 0).sum())
    if n_pos == 0 or n_neg == 0:
        raise CroprayError(f"{labels_path}: found {n_pos} signal (label 1) and {n_neg} non-signal (label 0) "
                           "crops; evaluation needs both classes")
    if tuple(ls.x.shape[2:]) != tuple(b.input_shape):
        raise CroprayError(f"{labels_path}: crops are {ls.x.shape[2]}x{ls.x.shape[3]} but the model "
                           f"{b.model_id} takes {b.input_shape[0]}x{b.input_shape[1]}")
    scores = score_array(b.model, ls.x)
    res = evaluate_scores(ls.y, scores, b.threshold, snr=ls.snr, n_boot=n_boot)
    trained_on = b.manifest.get("train_summary", {}).get("labels")
    same = trained_on is not None and _same_path(trained_on, labels_path)
    about = {  # what the set and the model are: also the head of the report's metrics.json
        "model": str(b.path), "model_id": b.model_id, "arch": b.arch, "labels": str(labels_path),
        "n_read": ls.n_read, "n_labels": int(len(ls.y)), "class_counts": {"signal": n_pos, "not_signal": n_neg},
        "invalid_rows": int(sum(ls.invalid.values())), "invalid_reasons": ls.invalid,
        "threshold": b.threshold, "training_labels": same,
    }
    rep = None
    if report is not None:
        rep = write_report(report, ls.y, scores, b.threshold, snr=ls.snr, results=res, extra=about,
                           title=f"{b.model_id} on {Path(str(labels_path)).name}")
    rule = b.manifest.get("train_summary", {}).get("threshold")
    fpr_here = float(np.mean(scores[ls.y == 0] >= b.threshold))
    return EvalResult(**about, **res, report=rep, seconds=round(time.perf_counter() - t0, 2),
                      threshold_rule=rule if isinstance(rule, dict) else None, fpr_here=fpr_here)


def _same_path(a: str, b) -> bool:
    try:
        return Path(a).resolve() == Path(str(b)).resolve()
    except OSError:
        return False
