"""The calibration crops a bundle carries (and each path-aware CV fold uses): a stratified sample."""

from __future__ import annotations

import numpy as np

# Labelled crops a bundle stores (int8 scales, the exported graph's agreement check); path-aware CV draws as
# many per fold from that fold's training part, so both quantize alike.
CALIBRATION_CROPS = 256


def calibration_sample(x: np.ndarray, y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Up to n crops (N', 1, H, W) float32, both classes in their labelled proportion."""
    rng = np.random.default_rng(seed)
    take = min(n, len(y))
    idx = np.concatenate([rng.permutation(np.flatnonzero(y == c))[: max(1, round(take * np.mean(y == c)))]
                          for c in (0, 1)])
    return np.ascontiguousarray(x[np.sort(idx)[:take]], dtype=np.float32)
