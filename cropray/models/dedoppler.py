"""`dedoppler`: a label-free classical baseline, so every report can show how far learning beats physics.

A narrowband signal is a straight track in the (time, frequency) crop: constant channel, or drifting
at a constant rate (Doppler). The matched statistic for "is there a track" is the largest sum of
normalised power along any straight track. We search every start channel in the first row, plus
T2/4 channels beyond each edge (tracks crossing a side edge count their in-crop part; the upstream
detector centres candidates, so tracks are mostly inside), and every integer total drift
d in [-(T2-1), T2-1] channels over the crop (T2 = rows rounded up to a power of two; up to one channel
per row, i.e. a diagonal across a square crop) with a Taylor tree: tracks over 2n rows are built from
two tracks over n rows (first half drift d//2, second half starting d - d//2 channels further), so all
T2 drifts x W starts cost log2(T2) passes over the crop instead of T2 (the de-Doppler search used in
radio SETI, vectorised here as two strided adds per level).

Steps: RobustNorm with row centring (removes broadband impulses: they light every channel of a row,
which would add to every track) -> Taylor tree for positive drifts, and on the frequency-flipped crop
for negative drifts -> boxcar across start channels for each width in `widths` (a k-wide track) ->
score = max over widths, drifts and starts of track_sum / sqrt(T * width), an SNR-like number.
Measured on 6,000 fresh synthetic crops (`cropray.synth`, seed 7): ROC-AUC 0.976 with the defaults;
widths (1,) 0.970 and (1, 2, 4) 0.970 (signals are 1-4 channels wide, but every extra width also
raises the maximum over pure noise); without asinh compression 0.864 (bright blobs dominate linear
sums), without bandpass flattening 0.804, without row centring 0.973.
No trainable parameters; it is still a registered nn.Module so bundles and scoring treat it the same.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cropray.errors import ConfigError
from cropray.models._base import CropModel, check_int
from cropray.models._registry import register_model


def taylor_tree(z: torch.Tensor) -> torch.Tensor:
    """(N, T2, W) with T2 a power of two -> (N, T2, W): sums along tracks of drift d (rows) from start f.

    Out[:, d, f] = sum over rows r of z[:, r, f + c_d(r)], c_d a non-decreasing staircase from 0 to d
    channels (Taylor's straight-line approximation). Channels past the right edge count as zero.
    Each level combines pairs of row blocks: drift 2h and 2h+1 over 2n rows = the first half's drift-h
    track + the second half's drift-h track started h (or h+1) channels further right.
    """
    n_tracks, n_rows, width = z.shape
    a = z.unsqueeze(2)  # (N, blocks = T2, drifts = 1, W): one-row tracks
    n = 1
    while n < n_rows:
        nb = a.shape[1] // 2
        first = a[:, 0::2]  # (N, nb, n, W) first half of each new block
        sp = F.pad(a[:, 1::2], (0, n))  # (N, nb, n, L = W + n) second half, zeros past the edge
        # drift 2h: second half shifted by h channels; drift 2h + 1: by h + 1
        a = torch.stack([first + _skew(sp, width, 0), first + _skew(sp, width, 1)], dim=3)  # (N, nb, n, 2, W)
        a = a.reshape(n_tracks, nb, 2 * n, width)  # drift d = 2h + {0, 1}
        n *= 2
    return a[:, 0]


def _skew(sp: torch.Tensor, width: int, shift: int) -> torch.Tensor:
    """(N, nb, n, L = W + n) -> (N, nb, n, W) with out[..., h, f] = sp[..., h, f + h + shift], shift <= 1.

    Skew trick with pad + reshape only: flattened, row h starts at h * L, and h * L + h + f =
    h * (L + 1) + f, so re-cutting the flat rows at length L + 1 shifts row h by h. (An `as_strided`
    view does the same without the pad copy, but ONNX export mistranslates it and inductor copies anyway.)
    """
    b, nb, n, length = sp.shape
    flat = F.pad(sp.reshape(b, nb, n * length), (0, n + 1))  # (N, nb, n*L + n + 1)
    flat = flat[..., shift:shift + n * (length + 1)]  # (N, nb, n * (L + 1)) view
    return flat.reshape(b, nb, n, length + 1)[..., :width]


@register_model("dedoppler")
class Dedoppler(CropModel):
    """Best straight-track (de-Doppler) SNR of the robustly normalised crop. Not trained."""

    trainable = False

    def __init__(self, *, widths=(1, 2), flatten: bool = True, flatten_window: int = 15,
                 row_center: bool = True, compress: str = "asinh"):
        super().__init__()
        if not isinstance(widths, (list, tuple)) or not widths:
            raise ConfigError(f"widths={widths!r} must be a non-empty list of boxcar widths (channels)")
        ws = sorted({check_int("widths[]", w, 1, 32) for w in widths})
        self._init_common({"widths": ws, "flatten": flatten, "flatten_window": flatten_window,
                           "row_center": row_center, "compress": compress})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.preprocess(x)[:, 0]  # (B, T, W) noise ~ unit scale
        return track_snr(z, self._hparams["widths"])


def track_snr(z: torch.Tensor, widths) -> torch.Tensor:
    """(B, T, W) robustly normalised crops -> (B,) best straight-track SNR (the `dedoppler` score)."""
    b, t, w = z.shape
    t2 = 1 << max(0, math.ceil(math.log2(t)))
    # Negative drifts are positive drifts of the frequency-flipped crop: one tree for both signs.
    # Extra rows are zeros (= the noise median). T2/4 zero channels on the left let a track start
    # up to T2/4 channels outside the crop and enter through the edge (through the right edge,
    # for the flipped half); tracks may leave through the far edge anyway.
    zz = F.pad(torch.cat([z, z.flip(-1)]), (t2 // 4, 0, 0, t2 - t))  # (2B, T2, W + T2/4)
    sums = taylor_tree(zz)  # (2B, T2 drifts, W + T2/4 starts)
    # The tree is linear and shift-equivariant along frequency, so a k-channel-wide track's sum is
    # the boxcar over k adjacent starts of the 1-channel sums: one tree serves every width.
    best = None
    for k in widths:
        sk = sums
        if k > 1:  # k - 1 shifted adds: avg_pool1d is ~10x slower on these short rows
            padded = F.pad(sums, (0, k - 1))  # (2B, T2, W' + k - 1), zeros past the edge
            sk = sum(padded[..., j:j + sums.shape[-1]] for j in range(1, k)) + sums  # (2B, T2, W')
        bk = sk.amax(dim=(1, 2)) / math.sqrt(k)  # (2B,) per-pixel-noise-normalised
        best = bk if best is None else torch.maximum(best, bk)
    best = best.reshape(2, b).amax(dim=0)  # (B,) best of positive and negative drifts
    return best / math.sqrt(t)
