"""The numpy RobustNorm (`robust_norm_numpy`), torch-free: what a warm-started scoring actor runs
without importing torch (graph_cache.py); preprocess.py wraps it as a torch module for the fast paths.

See preprocess.py for why (np.partition medians and np.arcsinh are ~20x faster than the torch ops on
CPU) and why it is exact (a median is a selection: the same element torch.median returns).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

MAD_TO_SIGMA = np.float32(1.4826)


def _lower_median(a: np.ndarray, axis: int) -> np.ndarray:
    """torch.median(a, dim=axis).values: the ((n-1)//2)-th smallest element, keepdims."""
    k = (a.shape[axis] - 1) // 2
    return np.take(np.partition(a, k, axis=axis), [k], axis=axis)


def _running_median(x: np.ndarray, window: int) -> np.ndarray:
    """`preprocess.running_median` over the last axis: sliding median of width k, edges padded by
    point reflection about the median of the 3 outermost values; same length as x."""
    n = x.shape[-1]
    k = min(window, n - 2 if n % 2 else n - 3)
    if k < 3:
        return x
    h = k // 2
    a_lo = _lower_median(x[..., :3], axis=-1)  # (..., 1)
    a_hi = _lower_median(x[..., -3:], axis=-1)
    lo = 2 * a_lo - x[..., 3:h + 3][..., ::-1]  # (..., h)
    hi = 2 * a_hi - x[..., n - h - 3:n - 3][..., ::-1]
    xp = np.concatenate([lo, x, hi], axis=-1)  # (..., n + 2h)
    win = sliding_window_view(xp, k, axis=-1)  # (..., n, k) view
    return np.partition(win, h, axis=-1)[..., h]  # odd k: the exact middle


def robust_norm_numpy(x: np.ndarray, *, flatten: bool, flatten_window: int, row_center: bool,
                      compress: str, stride: int) -> np.ndarray:
    """(B,1,H,W) float32 finite raw power -> (B,1,H,W) float32, = RobustNorm.forward (preprocess.py).

    stride: the model's pixel subsampling for the global median/MAD (`subsample_stride(H*W, W)` of
    cropray.models.preprocess; passed in so that this module needs no torch)."""
    b = x.shape[0]
    x = x.astype(np.float32, copy=False)
    if flatten:
        prof = _lower_median(x, axis=2)[:, :, 0]  # (B, 1, W) per-channel level over time
        base = _running_median(prof, flatten_window)  # (B, 1, W)
        floor = np.float32(1e-3) * np.abs(base).mean(axis=-1, keepdims=True, dtype=np.float32) + np.float32(1e-30)
        x = x / np.maximum(base, floor)[:, :, None, :]  # (B, 1, H, W)
    if row_center:
        x = x - _lower_median(x, axis=3)  # (B, 1, H, 1)
    flat = x.reshape(b, -1)  # (B, H*W)
    sub = flat[:, ::stride]  # (B, ~H*W/5) the model's pixel sample
    med = _lower_median(sub, axis=1)  # (B, 1)
    mad = _lower_median(np.abs(sub - med), axis=1)  # (B, 1)
    floor = np.float32(1e-6) * np.abs(sub).mean(axis=1, keepdims=True, dtype=np.float32) + np.float32(1e-30)
    z = (flat - med) / np.maximum(MAD_TO_SIGMA * mad, floor)  # (B, H*W)
    if compress == "asinh":
        z = np.arcsinh(z)
    return z.reshape(x.shape)
