"""The label-free physics path in numpy, torch-free: RobustNorm, the Taylor tree and the track SNR.

The same numbers as the torch modules (cropray.models.preprocess.RobustNorm, cropray.models.taylor)
at a fraction of their cost on CPU, for the `dedoppler` model and the CNNs' track prior at scoring
time (a warm-started scoring actor imports this without importing torch). torch stays the
definition: training, ONNX export and GPUs use it; tests pin this module to it and to a brute-force
straight-track search.

Why it is faster (measured by research/profile_dedoppler.py):
* medians are selections (`np.partition`: the element torch.median returns, the lower middle for an
  even count), not torch's per-slice copy + nth_element;
* the Taylor tree keeps the batch as the innermost axis, (T2, W', M) with M = 2B crops: a level's
  skewed read "row h shifted h channels right" is then one strided view whose inner runs are W' * M
  contiguous floats, so a level is two numpy adds over the whole batch (torch builds it from
  pads, stacks and reshapes, copying each level ~4 times);
* the additions happen in the same pairs and order as torch's, so tree sums are bit-identical; only
  asinh (a different formula, < 4e-7) and float32 means (summation order) differ in the last bits.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

MAD_TO_SIGMA = np.float32(1.4826)  # MAD of a Gaussian -> its standard deviation
SAMPLES = 512  # at least this many pixels for the global median / MAD
CHUNK = 64  # crops per pass: the tree's two buffers (2 * 64 crops * 64 * 96 * 4 B = 3 MB) stay in cache


def subsample_stride(n: int, width: int) -> int:
    """A stride for sampling n row-major pixels: coprime with the row width (all channels get sampled)
    and leaving >= SAMPLES pixels; 1 for small crops. (RobustNorm's global median/MAD sample.)"""
    for s in (3, 5, 7):
        if math.gcd(s, width) == 1 and n // s >= SAMPLES:
            return s
    return 1


def lower_median(a: np.ndarray, axis: int) -> np.ndarray:
    """torch.median(a, dim=axis).values with keepdims: the ((n-1)//2)-th smallest element."""
    k = (a.shape[axis] - 1) // 2
    return np.take(np.partition(a, k, axis=axis), [k], axis=axis)


def running_median_np(x: np.ndarray, window: int) -> np.ndarray:
    """`preprocess.running_median` over the last axis: sliding median of width k, edges padded by
    point reflection about the median of the 3 outermost values; same length as x."""
    n = x.shape[-1]
    k = min(window, n - 2 if n % 2 else n - 3)
    if k < 3:
        return x
    h = k // 2
    a_lo = lower_median(x[..., :3], axis=-1)  # (..., 1) level at channel 1
    a_hi = lower_median(x[..., -3:], axis=-1)  # (..., 1) level at channel n - 2
    lo = 2 * a_lo - x[..., 3:h + 3][..., ::-1]  # (..., h) channels -h .. -1
    hi = 2 * a_hi - x[..., n - h - 3:n - 3][..., ::-1]  # (..., h) channels n .. n + h - 1
    xp = np.concatenate([lo, x, hi], axis=-1)  # (..., n + 2h)
    win = sliding_window_view(xp, k, axis=-1)  # (..., n, k) view
    return np.partition(win, h, axis=-1)[..., h]  # odd k: the exact middle


def asinh_np(z: np.ndarray) -> np.ndarray:
    """float32 asinh within 4e-7 of torch.asinh (the model's fast_asinh formula, in numpy)."""
    return np.arcsinh(z)


def robust_norm_np(x: np.ndarray, *, flatten: bool, flatten_window: int, row_center: bool, compress: str,
                   stride: int | None = None) -> np.ndarray:
    """(B,1,H,W) finite raw power -> (B,1,H,W) float32, = RobustNorm.forward within float32 rounding.

    stride: pixel subsampling of the global median/MAD; None = the model's `subsample_stride(H*W, W)`
    (a caller may pass the value a bundle recorded)."""
    b, _, height, width = x.shape
    if stride is None:
        stride = subsample_stride(height * width, width)
    x = x.astype(np.float32, copy=False)
    if flatten:
        prof = lower_median(x, axis=2)[:, :, 0]  # (B, 1, W) per-channel level over time
        base = running_median_np(prof, flatten_window)  # (B, 1, W) smooth, blind to narrow tones
        floor = np.float32(1e-3) * np.abs(base).mean(axis=-1, keepdims=True, dtype=np.float32) + np.float32(1e-30)
        x = x / np.maximum(base, floor)[:, :, None, :]  # (B, 1, H, W), noise level ~1
    if row_center:
        x = x - lower_median(x, axis=3)  # (B, 1, H, 1) broadband impulse level
    flat = x.reshape(b, -1)  # (B, H*W)
    sub = flat[:, ::stride]  # (B, ~H*W/stride) the model's pixel sample
    med = lower_median(sub, axis=1)  # (B, 1)
    mad = lower_median(np.abs(sub - med), axis=1)  # (B, 1)
    floor = np.float32(1e-6) * np.abs(sub).mean(axis=1, keepdims=True, dtype=np.float32) + np.float32(1e-30)
    z = (flat - med) / np.maximum(MAD_TO_SIGMA * mad, floor)  # (B, H*W)
    if compress == "asinh":
        z = asinh_np(z)
    return z.reshape(x.shape)


def _tree_buffers(z: np.ndarray, width_pad: int) -> tuple[np.ndarray, int, int]:
    """(B, T, W) -> (T2, Wb, 2B) float32 batch-last tree input and (T2, W'): crops, then the same crops
    flipped in frequency (negative drifts); T2/4 zero channels on the left, zero rows T..T2, and zero
    channels from W' = W + T2/4 up to Wb = W' + width_pad (the tree's reads past the right edge)."""
    b, t, w = z.shape
    t2 = 1 << max(0, math.ceil(math.log2(t)))
    left = t2 // 4
    wp = w + left
    buf = np.zeros((t2, wp + width_pad, 2 * b), np.float32)  # (T2, Wb, 2B)
    zt = z.transpose(1, 2, 0)  # (T, W, B) view
    buf[:t, left:wp, :b] = zt
    buf[:t, left:wp, b:] = zt[:, ::-1]
    return buf, t2, wp


def taylor_tree_np(buf: np.ndarray, t2: int, wp: int) -> np.ndarray:
    """(T2, Wb, M) batch-last tracks -> (T2 drifts, Wb, M) sums; = taylor.taylor_tree on columns < wp.

    out[d, f] = sum over rows r of in[r, f + c_d(r)] (c_d Taylor's staircase from 0 to d channels);
    columns >= wp of the input must be zero (channels past the right edge) and stay zero in the output.
    A level merges row blocks of n into blocks of 2n: new row 2h + s = first-half row h + second-half
    row h read h + s channels further right (s = 0, 1). Wb - wp >= T2 / 2 keeps every read in bounds.
    """
    _, wb, m = buf.shape
    it = buf.itemsize
    a, out = buf, np.zeros_like(buf)
    row = wb * m * it  # bytes per tree row
    n = 1
    while n < t2:
        nb = t2 // (2 * n)
        for s in (0, 1):
            first = as_strided(a, (nb, n, wp, m), (2 * n * row, row, m * it, it), writeable=False)
            # row h of the second half, starting h + s channels further: its row stride grows by one channel
            second = as_strided(a[n:, s:], (nb, n, wp, m), (2 * n * row, row + m * it, m * it, it),
                                writeable=False)
            dst = as_strided(out[s:], (nb, n, wp, m), (2 * n * row, 2 * row, m * it, it))
            np.add(first, second, out=dst)
        a, out = out, a
        n *= 2
    return a


def track_snr_np(z: np.ndarray, widths) -> np.ndarray:
    """(B, T, W) robustly normalised crops -> (B,) float32 best straight-track SNR = taylor.track_snr."""
    z = np.asarray(z, np.float32)
    b, t, _ = z.shape
    widths = sorted({int(k) for k in widths})
    t2 = 1 << max(0, math.ceil(math.log2(t)))
    buf, t2, wp = _tree_buffers(z, max(t2 // 2, widths[-1] - 1, 1))
    sums = taylor_tree_np(buf, t2, wp)  # (T2, Wb, 2B); zeros from column wp on
    best = None
    for k in widths:
        # k-wide track = boxcar over k adjacent starts; torch's order: ((s1 + s2) + ...) + s0
        sk = None
        for j in range(1, k):
            sj = sums[:, j:j + wp]
            sk = sj if sk is None else sk + sj
        s0 = sums[:, :wp]
        sk = s0 if sk is None else sk + s0  # (T2, W', 2B)
        bk = sk.max(axis=(0, 1)) / np.float32(math.sqrt(k))  # (2B,)
        best = bk if best is None else np.maximum(best, bk)
    best = best.reshape(2, b).max(axis=0)  # (B,) both drift signs
    return (best / np.float32(math.sqrt(t))).astype(np.float32, copy=False)


def dedoppler_score_np(x: np.ndarray, hparams: dict, *, chunk: int = CHUNK) -> np.ndarray:
    """(B, 1, H, W) raw float32 crops -> (B,) float32 `dedoppler` scores (its hparams: widths, flatten,
    flatten_window, row_center, compress), = build_model("dedoppler", **hparams)(x) within 1e-5.

    Non-finite crops are not handled (torch's medians order NaN differently): callers quarantine them."""
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"expected crops (B, 1, H, W), got shape {x.shape}")
    norm = {k: hparams[k] for k in ("flatten", "flatten_window", "row_center", "compress")}
    out = np.empty(len(x), np.float32)
    for i in range(0, len(x), chunk):
        z = robust_norm_np(x[i:i + chunk], **norm)  # (b, 1, H, W)
        out[i:i + chunk] = track_snr_np(z[:, 0], hparams["widths"])
    return out
