"""Per-row priorities of each reason to label a crop (higher = more worth a look). Numpy only.

Both the model and the track statistic are put on a logit-like scale first, so "how sure" means the
same on both sides of a disagreement:
- model margin m = logit(score) - logit(threshold) for probability-like scores in [0, 1] (CNNs, the
  Siamese gallery rules); TRACK_SCALE x (score - threshold) for raw-SNR scores (the `dedoppler` model);
- track logit t = TRACK_SCALE x (track - TRACK_OFFSET) (cropray/suggest/features.py).
"""

from __future__ import annotations

import numpy as np

from cropray.suggest.config import DISAGREE, DIVERSE, TOP, UNCERTAIN
from cropray.suggest.features import TRACK_SCALE, track_logit

EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def model_margin(score: np.ndarray, threshold: float, probability: bool) -> np.ndarray:
    """(N,) signed distance from the calibrated threshold (> 0: the model says signal)."""
    if probability:
        return _logit(score) - _logit(np.float64(threshold))
    return TRACK_SCALE * (np.asarray(score, np.float64) - threshold)


def priorities(score: np.ndarray, track: np.ndarray, threshold: float, probability: bool,
               random_key: np.ndarray) -> dict[str, np.ndarray]:
    """reason -> (N,) float64 priority; -inf where a row does not qualify for that reason."""
    m = model_margin(score, threshold, probability)
    t = track_logit(track)
    disagree = np.where(np.sign(m) != np.sign(t), np.minimum(np.abs(m), np.abs(t)), -np.inf)
    return {
        TOP: np.asarray(score, np.float64),
        UNCERTAIN: -np.abs(m),  # closest to the threshold first
        DISAGREE: disagree,  # both sure, on opposite sides
        DIVERSE: np.asarray(random_key, np.float64),  # top-k of uniform keys = a uniform sample
    }
