"""Evaluation: metrics with intervals, threshold calibration, per-SNR recall, report plots, eval job."""

from cropray.evaluate.job import evaluate_bundle, score_array
from cropray.evaluate.metrics import binary_metrics, calibrate_threshold, recall_at_fpr, snr_recall
from cropray.evaluate.report import evaluate_scores, write_report

__all__ = ["binary_metrics", "calibrate_threshold", "evaluate_bundle", "evaluate_scores", "recall_at_fpr",
           "score_array", "snr_recall", "write_report"]
