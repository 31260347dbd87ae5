"""Keep signals already in the archive out of the negatives.

An archive is unlabelled, and a scored one can be half signals: a background that already holds a
track must not become a training negative (nor host a second signal). The label-free guard is the
`dedoppler` statistic (best straight-track SNR of the robustly normalised crop): a background whose
statistic exceeds the `q` quantile of the same statistic on the *labelled negatives* is dropped.

Why that rule is safe: on crops like the labelled negatives it drops at most a fraction 1 - q of
them (by the quantile's definition; 1 % at the default), so the negatives the model learns from keep
the archive's RFI and bandpass variety; every background it keeps scores like a labelled negative,
so what remains undetected in it are tracks the physics statistic cannot see (faint or far from a
straight line) — label noise bounded by the archive's share of such signals, never bright tracks.
"""

from __future__ import annotations

import numpy as np

CHUNK = 1024  # crops per forward: bounds the torch temporaries


def track_statistic(x: np.ndarray) -> np.ndarray:
    """(N, 1, H, W) raw crops -> (N,) float32 `dedoppler` score (SNR-like), computed in chunks."""
    import torch

    from cropray.models import build_model
    from cropray.models.policy import baseline_arch

    model = build_model(baseline_arch()).eval()
    out = np.empty(len(x), np.float32)
    with torch.inference_mode():
        for i in range(0, len(x), CHUNK):
            out[i:i + CHUNK] = model(torch.from_numpy(np.ascontiguousarray(x[i:i + CHUNK], np.float32))).numpy()
    return out


def exclusion_threshold(neg_stat: np.ndarray, quantile: float) -> float:
    """The `quantile` of the labelled negatives' statistic (inf when there are none: nothing excluded)."""
    neg_stat = np.asarray(neg_stat, np.float64)
    neg_stat = neg_stat[np.isfinite(neg_stat)]
    return float(np.quantile(neg_stat, quantile)) if len(neg_stat) else float("inf")
