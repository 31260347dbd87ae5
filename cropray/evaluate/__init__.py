"""Evaluation: metrics with intervals, threshold calibration, per-SNR recall, report plots, eval job."""

from cropray._lazy import lazy_exports

_EXPORTS = {
    "evaluate_bundle": "cropray.evaluate.job",
    "score_array": "cropray.evaluate.job",
    "binary_metrics": "cropray.evaluate.metrics",
    "calibrate_threshold": "cropray.evaluate.metrics",
    "recall_at_fpr": "cropray.evaluate.metrics",
    "snr_recall": "cropray.evaluate.metrics",
    "evaluate_scores": "cropray.evaluate.report",
    "write_report": "cropray.evaluate.report",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)  # importing the package imports none of them
