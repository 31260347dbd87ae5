"""The evaluation report: metrics.json plus PNG plots in one directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from cropray.evaluate.metrics import binary_metrics, calibrate_threshold, snr_recall


def evaluate_scores(y, scores, threshold: float, *, snr=None, n_boot: int = 1000, seed: int = 0) -> dict:
    """All evaluation numbers for scores of a labelled set at a given threshold (JSON-able dict)."""
    y = np.asarray(y).astype(np.int64)
    s = np.asarray(scores, dtype=np.float64)
    out: dict[str, Any] = {"metrics": binary_metrics(y, s, threshold, n_boot=n_boot, seed=seed),
                           "threshold_here": calibrate_threshold(y, s)}
    if snr is not None:
        out["snr_recall"] = snr_recall(y, s, snr, threshold)
    return out


def write_report(out_dir, y, scores, threshold: float, *, snr=None, results: dict | None = None,
                 extra: dict | None = None, title: str = "") -> dict:
    """Write metrics.json (results, or computed here) and the PNG plots; return {"files": [...], ...}."""
    from cropray.evaluate import plots  # matplotlib only when a report is written

    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    y = np.asarray(y).astype(np.int64)
    s = np.asarray(scores, dtype=np.float64)
    res = results if results is not None else evaluate_scores(y, s, threshold, snr=snr)
    files = [plots.plot_roc(y, s, d / "roc.png", title),
             plots.plot_pr(y, s, d / "pr.png", title),
             plots.plot_histograms(y, s, threshold, d / "score_hist.png", title),
             plots.plot_calibration(y, s, d / "calibration.png", title=title)]
    if res.get("snr_recall"):
        files.append(plots.plot_snr_recall(res["snr_recall"], d / "snr_recall.png", title))
    doc = {**(extra or {}), **res, "plots": [Path(f).name for f in files]}
    (d / "metrics.json").write_text(json.dumps(doc, indent=2, sort_keys=True, default=_default) + "\n")
    files.append(str(d / "metrics.json"))
    return {"dir": str(d), "files": files}


def _default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON-able: {type(o).__name__}")
