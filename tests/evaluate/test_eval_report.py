"""The report writer produces metrics.json and non-empty PNGs."""

import json

import numpy as np

from cropray.evaluate import write_report


def test_write_report(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    s = 1 / (1 + np.exp(-(rng.normal(size=300) + 2 * y - 1)))
    snr = np.where(y == 1, rng.uniform(5, 100, 300), np.nan)
    out = write_report(tmp_path / "rep", y, s, 0.5, snr=snr, extra={"model_id": "x"})
    names = sorted(p.name for p in (tmp_path / "rep").iterdir())
    assert names == ["calibration.png", "metrics.json", "pr.png", "roc.png", "score_hist.png", "snr_recall.png"]
    for p in (tmp_path / "rep").glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000
    doc = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert doc["model_id"] == "x" and 0.8 < doc["metrics"]["roc_auc"]["value"] < 1
    assert len(doc["snr_recall"]) == 5 and len(out["files"]) == 6


def test_snr_recall_plot_accepts_interval_not_containing_the_point(tmp_path):
    # Percentile-bootstrap intervals of tiny bins can sit beside the point estimate.
    from cropray.evaluate.plots import plot_snr_recall

    out = plot_snr_recall([{"snr_lo": 5, "snr_hi": 10, "recall": 0.5, "lo": 0.6, "hi": 0.9}], tmp_path / "s.png")
    assert (tmp_path / "s.png").is_file() and out
