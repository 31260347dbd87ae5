"""Metrics, intervals and threshold calibration against hand-worked cases and brute-force definitions.

The references here are the metrics' definitions written out in O(n^2) / O(n x thresholds) loops
(pair counting for ROC-AUC, every distinct threshold for AP and recall@FPR): independent of both the
scikit-learn point values and the vectorised bootstrap statistic they check.
"""

import numpy as np
import pytest

from cropray.evaluate.metrics import (
    _batch_metrics,
    _point,
    binary_metrics,
    calibrate_threshold,
    snr_recall,
    wilson,
)

Z = 1.959963984540054  # the 97.5% normal quantile


def _auc_pairs(y, s) -> float:
    """P(score of a positive > score of a negative), ties counting one half."""
    pos, neg = s[y == 1][:, None], s[y == 0][None, :]
    return float(((pos > neg) + 0.5 * (pos == neg)).mean())


def _ap_definition(y, s) -> float:
    """Average precision: sum over distinct thresholds (descending) of (R_k - R_(k-1)) x P_k."""
    ap, prev_recall = 0.0, 0.0
    for t in np.unique(s)[::-1]:
        pred = s >= t
        tp = (pred & (y == 1)).sum()
        recall = tp / (y == 1).sum()
        ap += (recall - prev_recall) * tp / pred.sum()
        prev_recall = recall
    return float(ap)


def _recall_at_fpr_definition(y, s, fpr: float) -> float:
    best = 0.0
    for t in np.r_[np.unique(s), np.inf]:
        if (s[y == 0] >= t).mean() <= fpr + 1e-12:
            best = max(best, float((s[y == 1] >= t).mean()))
    return best


def _definitions(y, s, threshold) -> dict:
    pred = s >= threshold
    tpr, tnr = pred[y == 1].mean(), (~pred[y == 0]).mean()
    return {"roc_auc": _auc_pairs(y, s), "pr_auc": _ap_definition(y, s),
            "recall_at_1pct_fpr": _recall_at_fpr_definition(y, s, 0.01),
            "recall_at_5pct_fpr": _recall_at_fpr_definition(y, s, 0.05),
            "accuracy": float((pred == (y == 1)).mean()), "balanced_accuracy": float((tpr + tnr) / 2)}


def test_hand_worked_case():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8])
    m = binary_metrics(y, s, threshold=0.5, n_boot=0)
    assert m["roc_auc"]["value"] == pytest.approx(0.75)  # 3 of 4 (pos, neg) pairs ordered
    assert m["pr_auc"]["value"] == pytest.approx((1 + 2 / 3) / 2)  # precision 1 then 2/3 at the positives
    assert m["recall_at_1pct_fpr"]["value"] == pytest.approx(0.5)  # only 0.8 clears every negative
    assert m["recall_at_5pct_fpr"]["value"] == pytest.approx(0.5)
    assert m["accuracy"]["value"] == pytest.approx(0.75)  # predicts [0,0,0,1]
    assert m["balanced_accuracy"]["value"] == pytest.approx(0.75)
    assert m["roc_auc"]["lo"] is None and (m["n_pos"], m["n_neg"]) == (2, 2)


def test_hand_worked_case_with_ties():
    # positives score 0.9, 0.5, 0.2; negatives 0.9, 0.2 (one tie at each end)
    y = np.array([1, 0, 1, 0, 1])
    s = np.array([0.9, 0.9, 0.5, 0.2, 0.2])
    # pairs (pos, neg): (.9,.9) 1/2, (.9,.2) 1, (.5,.9) 0, (.5,.2) 1, (.2,.9) 0, (.2,.2) 1/2 -> 3/6
    # AP: thresholds .9 (P 1/2, R 1/3), .5 (P 2/3, R 2/3), .2 (P 3/5, R 1)
    want = {"roc_auc": 0.5, "pr_auc": (1 / 2 + 2 / 3 + 3 / 5) / 3, "recall_at_1pct_fpr": 0.0,
            "recall_at_5pct_fpr": 0.0, "accuracy": 3 / 5, "balanced_accuracy": (2 / 3 + 1 / 2) / 2}
    got_point, got_vec = _point(y, s, 0.5), _batch_metrics(y[None], s[None], 0.5)
    for k, v in want.items():
        assert got_point[k] == pytest.approx(v, abs=1e-12), k
        assert got_vec[k][0] == pytest.approx(v, abs=1e-12), k


def test_point_and_vectorised_metrics_equal_the_definitions_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(40):
        n = int(rng.integers(6, 120))
        y = rng.integers(0, 2, n)
        y[:2] = [0, 1]
        s = np.round(rng.normal(size=n) + y, int(rng.integers(0, 3)))  # rounding makes ties
        want = _definitions(y, s, 0.3)
        got_point, got_vec = _point(y, s, 0.3), _batch_metrics(y[None], s[None], 0.3)
        for k, v in want.items():
            assert got_point[k] == pytest.approx(v, abs=1e-9), k
            assert got_vec[k][0] == pytest.approx(v, abs=1e-9), k


def test_bootstrap_is_stratified_by_class():
    # A constant score predicts every crop negative: accuracy is n_neg / n in every resample that keeps
    # the class counts, so a stratified interval has zero width (an unstratified one would not).
    y = np.r_[np.ones(30, int), np.zeros(70, int)]
    m = binary_metrics(y, np.zeros(100), threshold=0.5, n_boot=200, seed=1)
    assert m["accuracy"]["lo"] == m["accuracy"]["hi"] == pytest.approx(0.7)
    assert m["balanced_accuracy"]["lo"] == m["balanced_accuracy"]["hi"] == pytest.approx(0.5)


def test_bootstrap_interval_brackets_value_and_is_seeded():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    s = rng.normal(size=400) + 1.5 * y
    a = binary_metrics(y, s, 0.75, n_boot=300, seed=3)
    b = binary_metrics(y, s, 0.75, n_boot=300, seed=3)
    assert a == b
    for k in ("roc_auc", "pr_auc", "recall_at_1pct_fpr", "accuracy"):
        assert a[k]["lo"] <= a[k]["value"] <= a[k]["hi"], k
    assert 0.02 < a["roc_auc"]["hi"] - a["roc_auc"]["lo"] < 0.2  # sqrt(n)-sized, not degenerate


def test_one_class_is_an_error():
    with pytest.raises(ValueError, match="both classes"):
        binary_metrics([1, 1], [0.2, 0.3], 0.5)
    with pytest.raises(ValueError, match="both classes"):
        calibrate_threshold([0, 0, 0], [0.2, 0.3, 0.4])


def test_wilson_interval_hand_worked():
    # k = 0: [0, z^2 / (n + z^2)]; k = n: [n / (n + z^2), 1]; n = 0: no interval
    assert wilson(0, 5) == pytest.approx((0.0, Z * Z / (5 + Z * Z)))
    assert wilson(10, 10) == pytest.approx((10 / (10 + Z * Z), 1.0))
    # k = 5, n = 10: centre 1/2, half-width z sqrt(1/40 + z^2/400) / (1 + z^2/10)
    h = Z * np.sqrt(0.25 / 10 + Z * Z / 400) / (1 + Z * Z / 10)
    assert wilson(5, 10) == pytest.approx((0.5 - h, 0.5 + h))
    assert wilson(0, 0) == (None, None)


def test_calibrate_threshold_youden():
    # candidates between neighbours: 0.35 gives TPR 1, FPR 1/4 (J .75), beating 0.7 (J .5)
    y = np.array([0, 0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.5, 0.4, 0.9])
    assert calibrate_threshold(y, s) == pytest.approx(0.35)
    # separable: midpoint of the gap between the classes
    assert calibrate_threshold([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9]) == pytest.approx(0.45)
    # J ignores the class ratio: duplicating the negatives changes nothing
    assert calibrate_threshold(np.r_[y, y[:4]], np.r_[s, s[:4]]) == pytest.approx(0.35)
    # equal peaks: J = 1/2 at 0.25 (TPR 1, FPR 1/2) and at 0.8 (TPR 1/2, FPR 0), J = 0 at 0.55 between
    # them -> the upper median of the peaks in ascending order, here 0.8
    assert calibrate_threshold([0, 1, 0, 1], [0.1, 0.4, 0.7, 0.9]) == pytest.approx(0.8)
    assert calibrate_threshold([0, 1], [0.5, 0.5]) == pytest.approx(0.5)  # one distinct score


def test_snr_recall_bins():
    y = np.array([1, 1, 1, 1, 0])
    s = np.array([0.1, 0.9, 0.9, 0.9, 0.9])
    out = snr_recall(y, s, np.array([1, 2, 3, 4, np.nan]), threshold=0.5, bins=2)
    assert [b["n_pos"] for b in out] == [2, 2]
    assert [b["recall"] for b in out] == [0.5, 1.0]
    assert out[0]["lo"] < 0.5 < out[0]["hi"]
    assert snr_recall(y, s, np.full(5, np.nan), 0.5) == []
