"""Selection that respects noise: a candidate replaces a cheaper one only on a proven paired gain.

Why paired. Two candidates cross-validated on the same folds score the same out-of-fold crops, so
their ROC-AUC difference on those crops has far less variance than either ROC-AUC alone: the crops
that are hard for one are mostly hard for the other. Why a bound, not the point gain. The best of
several noisy CV figures is biased upward (the winner's curse): at 50 labels a learned model read
0.07 ROC-AUC above the physics baseline on its CV and fell below it on fresh crops. Shipping only
when the lower confidence bound of the paired gain is above zero keeps the cheaper candidate
(the label-free `dedoppler` first) unless the labels prove otherwise.

The interval: a stratified paired bootstrap. Each replicate draws the positives with replacement
among the positives and the negatives among the negatives (class counts fixed, as the labels are),
the *same* draw for both candidates, and takes the ROC-AUC difference; the percentile interval of
`N_BOOT` replicates at level `CI` is reported, and the gain counts as proven when its lower end is
above zero. Seeded: the same scores give the same interval.

Measured and dropped: the gain taken within each fold (the folds' ROC-AUC differences weighted by
their positive-negative pairs, redrawn within folds), which a pooled ROC-AUC's mixing of fold models
on different score scales would call for. On the outside simulator (docs/quality_outside.md) it
proved nothing the pooled rule did not: 1,000 labels, deep CNN: +0.023 [+0.007, +0.038] within
folds vs +0.024 [+0.009, +0.039] pooled (both ship it; fresh crops +0.046); 200 labels: both
unproven. At 50 labels (5 + 5 crops per fold) its lower bound sat at exactly 0.000 for a shallow CNN
whose fresh gain was +0.003, where the pooled one read -0.051: its failure is to ship noise, the
pooled one's to keep physics. The anchor's penalty keeps the fold models on physics' scale, which is
what the pooled rule needs.

The rule (`select`): candidates come cheapest first; the first (physics) is the incumbent; each
later candidate replaces the incumbent only when its paired gain over the incumbent is proven. Ties
(and unproven gains) go to the cheaper.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_BOOT = 2000  # replicates: the 2.5% quantile of 2,000 draws moves by < 0.002 ROC-AUC between seeds
CI = 0.95  # two-sided percentile interval; a gain is proven when its lower end (2.5%) is > 0
CHUNK_CELLS = 4_000_000  # replicates x crops weighed at once: bounds the temporaries (~32 MB float64)


@dataclass(frozen=True)
class PairedGain:
    """ROC-AUC(new) - ROC-AUC(ref) on the same crops, with its bootstrap interval."""

    gain: float
    lo: float
    hi: float
    n_boot: int
    ci: float

    @property
    def proven(self) -> bool:
        return self.lo > 0.0

    def to_dict(self) -> dict:
        return {"gain": round(self.gain, 4), "lo": round(self.lo, 4), "hi": round(self.hi, 4),
                "n_boot": self.n_boot, "ci": self.ci, "proven": self.proven}


def _weighted_aucs(s_pos: np.ndarray, s_neg: np.ndarray, wp: np.ndarray, wn: np.ndarray) -> np.ndarray:
    """ROC-AUC per bootstrap replicate, from multiplicities: wp (B, P) and wn (B, M) how often each
    positive / negative was drawn. AUC_b = sum_i wp_bi * (weighted negatives below s_i + half the tied
    ones) / (P M): the negatives are sorted once, a cumulative sum of their weights (B, M + 1) answers
    every positive by two lookups, so a replicate costs O(P + M), not a sort."""
    order = np.argsort(s_neg, kind="stable")
    neg = s_neg[order]
    c = np.zeros((len(wn), len(neg) + 1))
    np.cumsum(wn[:, order], axis=1, out=c[:, 1:])
    lo, hi = np.searchsorted(neg, s_pos, "left"), np.searchsorted(neg, s_pos, "right")
    below = c[:, lo] + 0.5 * (c[:, hi] - c[:, lo])  # (B, P) weighted negatives below each positive
    return (wp * below).sum(axis=1) / (wp.sum(axis=1) * wn.sum(axis=1))


def _draw_counts(rng, m: int, n: int) -> np.ndarray:
    """(m, n) multiplicities of n draws with replacement among n items, per replicate."""
    idx = rng.integers(0, n, (m, n)) + (np.arange(m) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=m * n).reshape(m, n).astype(np.float64)


def paired_auc_gain(y, s_new, s_ref, *, n_boot: int = N_BOOT, ci: float = CI, seed: int = 0) -> PairedGain:
    """Stratified paired bootstrap of ROC-AUC(s_new) - ROC-AUC(s_ref) on labels y (N,) (module docstring)."""
    y = np.asarray(y).astype(np.int64)
    a, b = np.asarray(s_new, np.float64), np.asarray(s_ref, np.float64)
    if not (len(y) == len(a) == len(b)):
        raise ValueError(f"paired scores need one score per label: {len(y)} labels, {len(a)} and {len(b)} scores")
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("a ROC-AUC difference needs both classes")
    ones_p, ones_n = np.ones((1, len(pos))), np.ones((1, len(neg)))
    gain = float(_weighted_aucs(a[pos], a[neg], ones_p, ones_n)[0] - _weighted_aucs(b[pos], b[neg], ones_p, ones_n)[0])
    rng = np.random.default_rng(seed)
    out, step = [], max(1, CHUNK_CELLS // len(y))
    for start in range(0, n_boot, step):
        m = min(step, n_boot - start)
        # the same draw for both candidates: positives among positives, negatives among negatives
        wp, wn = _draw_counts(rng, m, len(pos)), _draw_counts(rng, m, len(neg))
        out.append(_weighted_aucs(a[pos], a[neg], wp, wn) - _weighted_aucs(b[pos], b[neg], wp, wn))
    d = np.concatenate(out)
    alpha = (1 - ci) / 2
    lo, hi = np.quantile(d, [alpha, 1 - alpha])
    return PairedGain(gain=gain, lo=float(lo), hi=float(hi), n_boot=int(n_boot), ci=float(ci))


def select(y, scores: list[np.ndarray], *, seed: int = 0, n_boot: int = N_BOOT) -> tuple[int, list[dict]]:
    """(index of the chosen candidate, one record per candidate) for out-of-fold scores of candidates
    ordered cheapest first (index 0: the physics baseline). Each record holds the candidate's paired
    gain over the baseline (`vs_baseline`) and, for later candidates, over the incumbent it was judged
    against (`vs_incumbent`, with that incumbent's index)."""
    chosen, recs = 0, [{"vs_baseline": None, "vs_incumbent": None, "incumbent": None}]
    for i in range(1, len(scores)):
        vs_base = paired_auc_gain(y, scores[i], scores[0], seed=seed, n_boot=n_boot)
        vs_inc = vs_base if chosen == 0 else paired_auc_gain(y, scores[i], scores[chosen], seed=seed, n_boot=n_boot)
        recs.append({"vs_baseline": vs_base.to_dict(), "vs_incumbent": vs_inc.to_dict(), "incumbent": chosen})
        if vs_inc.proven:
            chosen = i
    return chosen, recs
