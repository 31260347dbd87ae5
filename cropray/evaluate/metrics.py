"""Binary detector metrics with bootstrap intervals, threshold calibration and per-SNR recall.

Kept implementations do the work: point values from scikit-learn (`roc_auc_score`,
`average_precision_score`, `roc_curve`), the Youden threshold from `roc_curve`'s operating points,
intervals from `scipy.stats.bootstrap` and Wilson intervals from `scipy.stats.binomtest`.

The bootstrap is stratified: scipy resamples each sample of `data` independently (`paired=False`), and
the two samples are the positives' and the negatives' scores, so every resample keeps the class counts
of the data and has both classes. The statistic is vectorised over resamples (`_batch_metrics`: sort
each resample's scores once, then every metric is a cumulative sum); tests check it against values
worked out by hand and against brute-force definitions, ties included.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import binomtest, bootstrap
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

FPR_POINTS = (0.01, 0.05)  # recall is reported at these false-positive rates
METRIC_NAMES = ("roc_auc", "pr_auc", "recall_at_1pct_fpr", "recall_at_5pct_fpr", "accuracy",
                "balanced_accuracy")


def recall_at_fpr(y: np.ndarray, s: np.ndarray, fpr: float) -> float:
    """Highest TPR over thresholds whose FPR is <= `fpr` (0 if no threshold gets there)."""
    f, t, _ = roc_curve(y, s, drop_intermediate=False)  # dropped collinear points can hide the max
    ok = f <= fpr + 1e-12
    return float(t[ok].max()) if ok.any() else 0.0


def _point(y: np.ndarray, s: np.ndarray, threshold: float) -> dict[str, float]:
    pred = s >= threshold
    tpr = float(pred[y == 1].mean())
    tnr = float((~pred[y == 0]).mean())
    return {
        "roc_auc": float(roc_auc_score(y, s)),
        "pr_auc": float(average_precision_score(y, s)),
        "recall_at_1pct_fpr": recall_at_fpr(y, s, 0.01),
        "recall_at_5pct_fpr": recall_at_fpr(y, s, 0.05),
        "accuracy": float((pred == (y == 1)).mean()),
        "balanced_accuracy": (tpr + tnr) / 2,
    }


def _batch_metrics(y: np.ndarray, s: np.ndarray, threshold: float) -> dict[str, np.ndarray]:
    """Every metric for each row of y, s (R, n) at once. Ties are grouped as scikit-learn does."""
    r, n = s.shape
    order = np.argsort(-s, axis=1, kind="stable")
    ss = np.take_along_axis(s, order, 1)  # (R, n) scores, descending
    yy = np.take_along_axis(y, order, 1).astype(np.float64)  # (R, n) labels in that order
    n_pos = yy.sum(1, keepdims=True)  # (R, 1)
    n_neg = n - n_pos
    tp = np.cumsum(yy, 1)  # (R, n) positives at or above each position
    fp = np.arange(1, n + 1)[None, :] - tp
    # A threshold can only sit between distinct scores: the last position of each tie group.
    end = np.ones_like(ss, dtype=bool)
    end[:, :-1] = ss[:, :-1] != ss[:, 1:]
    tpr, fpr = tp / n_pos, fp / n_neg  # (R, n), meaningful at group ends
    # ROC-AUC: trapezoids between consecutive group ends, starting from (0, 0).
    idx = np.where(end, np.arange(n)[None, :], n)
    nxt = np.minimum.accumulate(idx[:, ::-1], axis=1)[:, ::-1]  # (R, n) group end at or after i
    prev_tpr = np.zeros((r, 1))
    tpr_e = np.where(end, tpr, np.nan)
    fpr_e = np.where(end, fpr, np.nan)
    # Compress each row to its group ends (ragged), padded by repeating the last end (zero-width steps).
    cnt = end.sum(1)
    pos = np.cumsum(end, 1) - 1  # (R, n) index among ends
    width = int(cnt.max())
    t_c = np.ones((r, width))
    f_c = np.ones((r, width))
    rows, cols = np.nonzero(end)
    t_c[rows, pos[rows, cols]] = tpr_e[rows, cols]
    f_c[rows, pos[rows, cols]] = fpr_e[rows, cols]
    t_c = np.concatenate([prev_tpr, t_c], 1)  # (R, width + 1) from (0, 0)
    f_c = np.concatenate([np.zeros((r, 1)), f_c], 1)
    auc = (np.diff(f_c, axis=1) * (t_c[:, 1:] + t_c[:, :-1]) / 2).sum(1)
    # Average precision: sum over positives of the precision at their tie group's end.
    prec_end = np.take_along_axis(tp / (np.arange(1, n + 1)[None, :]), nxt, 1)  # (R, n)
    ap = (prec_end * yy).sum(1) / n_pos[:, 0]
    out = {"roc_auc": auc, "pr_auc": ap}
    for a in FPR_POINTS:
        ok = end & (fpr <= a + 1e-12)
        out[f"recall_at_{round(a * 100)}pct_fpr"] = np.where(ok, tpr, 0.0).max(1)
    pred = s >= threshold
    tpr_t = (pred & (y == 1)).sum(1) / n_pos[:, 0]
    tnr_t = (~pred & (y == 0)).sum(1) / n_neg[:, 0]
    out["accuracy"] = (pred == (y == 1)).mean(1)
    out["balanced_accuracy"] = (tpr_t + tnr_t) / 2
    return out


def binary_metrics(y, scores, threshold: float, *, n_boot: int = 1000, ci: float = 0.95,
                   seed: int = 0) -> dict[str, Any]:
    """ROC-AUC, PR-AUC (average precision), recall at 1% / 5% FPR, accuracy and balanced accuracy at
    `threshold` (score >= threshold = signal), each as {"value", "lo", "hi"}: a `ci` percentile interval
    from `n_boot` stratified bootstrap resamples (n_boot=0: no interval, lo = hi = None)."""
    y = np.asarray(y).astype(np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels {y.shape} and scores {s.shape} differ in length")
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"metrics need both classes; got {n_pos} positives and {n_neg} negatives")
    point = _point(y, s, threshold)
    lo_hi = {k: (None, None) for k in METRIC_NAMES}
    if n_boot > 0:
        lo_hi = _bootstrap(y, s, threshold, n_boot, seed, ci)
    out: dict[str, Any] = {"n": int(y.size), "n_pos": n_pos, "n_neg": n_neg, "threshold": float(threshold),
                           "ci": ci if n_boot > 0 else None, "n_boot": int(n_boot)}
    for k in METRIC_NAMES:
        out[k] = {"value": point[k], "lo": lo_hi[k][0], "hi": lo_hi[k][1]}
    return out


def _bootstrap(y, s, threshold, n_boot, seed, ci, max_cells: int = 4_000_000) -> dict[str, tuple]:
    """{metric: (lo, hi)}: percentile intervals over `n_boot` class-stratified resamples (scipy)."""

    def statistic(pos: np.ndarray, neg: np.ndarray, axis: int = -1) -> np.ndarray:
        # pos (R, n_pos), neg (R, n_neg): one resample per row -> (n_metrics, R)
        pos, neg = np.atleast_2d(np.moveaxis(pos, axis, -1)), np.atleast_2d(np.moveaxis(neg, axis, -1))
        labels = np.concatenate([np.ones(pos.shape, np.int64), np.zeros(neg.shape, np.int64)], 1)
        m = _batch_metrics(labels, np.concatenate([pos, neg], 1), threshold)
        return np.stack([m[k] for k in METRIC_NAMES])

    res = bootstrap((s[y == 1], s[y == 0]), statistic, n_resamples=n_boot, vectorized=True, paired=False,
                    batch=max(1, max_cells // y.size),  # bound memory: batch x n cells per array
                    confidence_level=ci, method="percentile", rng=np.random.default_rng(seed))
    lo, hi = res.confidence_interval
    return {k: (float(lo[i]), float(hi[i])) for i, k in enumerate(METRIC_NAMES)}


def calibrate_threshold(y, scores) -> float:
    """Decision threshold maximising Youden's J = TPR - FPR (= 2 x balanced accuracy - 1).

    Why J: it does not depend on the class ratio, and the ratio of a labelled set (often balanced on
    purpose) rarely matches an archive's; accuracy and F1 optimise for the labelled set's ratio. The
    operating points are `roc_curve`'s (one per distinct score, "score >= t"); the threshold is the
    midpoint between the score where J peaks and the next lower distinct score (the widest margin to
    both classes); among equal peaks, the median one.
    """
    y = np.asarray(y).astype(np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if not ((y == 1).any() and (y == 0).any()):
        raise ValueError(f"threshold calibration needs both classes; got {int((y == 1).sum())} positives "
                         f"and {int((y == 0).sum())} negatives")
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)  # thr: inf, then distinct scores descending
    if thr.size <= 2:  # one distinct score: nothing to separate
        return float(thr[-1])
    # Candidates predict "score >= thr[i]" with a lower distinct score left below: i = 1 .. len - 2,
    # ascending here so that ties resolve as before (median of the equal peaks).
    j = (tpr - fpr)[1:-1][::-1]
    mids = ((thr[1:-1] + thr[2:]) / 2)[::-1]  # (m,) midpoints to the next lower distinct score
    best = np.flatnonzero(j >= j.max() - 1e-12)
    return float(mids[best[len(best) // 2]])


def snr_recall(y, scores, snr, threshold: float, bins: int = 5) -> list[dict[str, Any]]:
    """Recall of the positives in SNR bins (equal-count bins of the positives' finite SNRs), each with
    a 95% Wilson interval. Empty list when no positive has a finite SNR."""
    y = np.asarray(y).astype(np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    snr = np.asarray(snr, dtype=np.float64).ravel()
    keep = (y == 1) & np.isfinite(snr)
    if not keep.any():
        return []
    v, hit = snr[keep], s[keep] >= threshold
    edges = np.unique(np.quantile(v, np.linspace(0, 1, min(bins, keep.sum()) + 1)))
    if edges.size < 2:
        edges = np.array([v.min(), v.max()])
    which = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, edges.size - 2)
    out = []
    for b in range(edges.size - 1):
        m = which == b
        k, n = int(hit[m].sum()), int(m.sum())
        lo, hi = wilson(k, n)
        out.append({"snr_lo": float(edges[b]), "snr_hi": float(edges[b + 1]), "n_pos": n,
                    "recall": k / n if n else None, "lo": lo, "hi": hi})
    return out


def wilson(k: int, n: int, ci: float = 0.95) -> tuple[float | None, float | None]:
    """Wilson score interval for a proportion k/n (`scipy.stats.binomtest`); (None, None) when n = 0."""
    if n == 0:
        return None, None
    lo, hi = binomtest(int(k), int(n)).proportion_ci(confidence_level=ci, method="wilson")
    return float(lo), float(hi)
