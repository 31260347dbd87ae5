"""`TrainResult`: what `train_and_bundle` returns and `cropray train --json` prints (its `to_dict()`).
Torch- and Ray-free."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cropray._result import JobResult


@dataclass(frozen=True)
class TrainResult(JobResult):
    bundle: str  # the bundle directory written
    model_id: str
    arch: str  # the architecture trained (auto resolved)
    n_labels: int  # valid labelled rows used
    n_read: int  # rows read
    class_counts: dict[str, int]  # signal / not_signal
    invalid_rows: int  # rows skipped (see invalid_reasons)
    invalid_reasons: dict[str, int]
    k: int  # cross-validation folds
    threshold: float  # the bundle's decision threshold (threshold_rule)
    threshold_rule: str  # how the threshold was set, in words
    cv_metrics: dict[str, Any]  # name -> {value, lo, hi}, out-of-fold (cropray.evaluate.metrics)
    final_epochs: int  # epochs of the refit on all labels
    config: dict[str, Any]  # the resolved TrainConfig.to_dict()
    seconds: float
    archive: dict[str, Any] | None = None  # what training on an unlabelled archive drew and injected, if it did
    auto_comparison: dict[str, Any] | None = None  # arch=auto's comparison of candidates (each with its paired
    #   ROC-AUC gain over physics and its interval), when it made one
    gain_vs_physics: dict[str, Any] | None = None  # the shipped model's paired ROC-AUC gain over dedoppler on
    #   the same out-of-fold crops: {gain, lo, hi, n_boot, ci, proven}; None when dedoppler itself ships
    threshold_detail: dict[str, Any] | None = None  # the rule record (cropray.train.threshold): youden, or
    #   target_fpr with F, the backgrounds it was set on and the fraction of them at or above it
