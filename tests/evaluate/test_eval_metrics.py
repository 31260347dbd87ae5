"""Metrics, intervals and threshold calibration against hand-worked cases."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from cropray.evaluate.metrics import _batch_metrics, _point, binary_metrics, calibrate_threshold, snr_recall


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


def test_vectorised_equals_sklearn_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(40):
        n = int(rng.integers(6, 200))
        y = rng.integers(0, 2, n)
        y[:2] = [0, 1]
        s = np.round(rng.normal(size=n) + y, int(rng.integers(0, 3)))  # rounding makes ties
        got = _batch_metrics(y[None], s[None], 0.3)
        want = _point(y, s, 0.3)
        assert want["roc_auc"] == pytest.approx(roc_auc_score(y, s))
        assert want["pr_auc"] == pytest.approx(average_precision_score(y, s))
        for k, v in want.items():
            assert got[k][0] == pytest.approx(v, abs=1e-9), k


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


def test_calibrate_threshold_youden():
    # candidates between neighbours: 0.35 gives TPR 1, FPR 1/4 (J .75), beating 0.7 (J .5)
    y = np.array([0, 0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.5, 0.4, 0.9])
    assert calibrate_threshold(y, s) == pytest.approx(0.35)
    # separable: midpoint of the gap between the classes
    assert calibrate_threshold([0, 0, 1, 1], [0.1, 0.2, 0.7, 0.9]) == pytest.approx(0.45)
    # J ignores the class ratio: duplicating the negatives changes nothing
    assert calibrate_threshold(np.r_[y, y[:4]], np.r_[s, s[:4]]) == pytest.approx(0.35)


def test_snr_recall_bins():
    y = np.array([1, 1, 1, 1, 0])
    s = np.array([0.1, 0.9, 0.9, 0.9, 0.9])
    out = snr_recall(y, s, np.array([1, 2, 3, 4, np.nan]), threshold=0.5, bins=2)
    assert [b["n_pos"] for b in out] == [2, 2]
    assert [b["recall"] for b in out] == [0.5, 1.0]
    assert out[0]["lo"] < 0.5 < out[0]["hi"]
    assert snr_recall(y, s, np.full(5, np.nan), 0.5) == []
