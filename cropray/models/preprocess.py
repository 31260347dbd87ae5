"""Per-crop robust normalisation, a module inside every model so training and scoring never disagree.

Crops are raw power, (B, 1, H, W) with H = time rows and W = frequency channels. Levels differ by
decades between archives and the bandpass can slope across a crop, so each crop is made
scale-free here:

1. Bandpass flattening (`flatten`): the bandpass is a multiplicative gain per frequency channel. We take
   the median over time per channel (B, 1, W) and then a *running median across frequency* (window
   `flatten_window`) of that profile, and divide by it. Why not divide by the per-channel time median
   alone? A non-drifting narrowband tone sits in the same 1-3 channels in every row, so its time median
   IS the tone: dividing by it would erase exactly the signal we look for. Across frequency a tone is a
   1-3 channel outlier, which a 15-channel running median ignores, while slopes and wide bumps (tens of
   channels) are followed. After this the noise level is ~1 in every channel, whatever the input units.
2. Optional row centring (`row_center`): subtract each row's median over frequency. A broadband impulse
   lights a whole row; a narrowband signal covers a few channels of it, so the row median removes the
   impulse and keeps the signal. Off by default for the CNNs (they learn impulses as negatives), on for
   the classical `dedoppler` search, which otherwise adds every impulse row to every track.
3. Robust standardisation: z = (x - median) / (1.4826 * MAD) over the crop. Both medians are taken
   over every 3rd pixel (1365 of 4096; the stride is coprime with W so every channel and row is
   sampled): 2.5x cheaper, and they move by ~2%. Measured on 6,000 synthetic crops with `dedoppler`:
   ROC-AUC 0.9761 exact, 0.9758 every 3rd, 0.9749 every 5th pixel. The per-channel time medians
   (step 1) stay exact: the bandpass estimate multiplies everything.
4. Compression (`compress`): "asinh" (default) or "none". Why not log of the raw power? log makes scale an
   offset, but it squeezes weak signals (a 2-sigma excess becomes tiny next to the log-noise spread) and
   needs a floor for zeros (uint8 crops). asinh(z) is linear for |z| < 1, where weak signals live, and
   logarithmic for the 100-1000 sigma impulses that would otherwise dominate BatchNorm statistics and
   the de-Doppler sums. Steps 1-3 already remove the input scale, so the output is invariant to
   multiplying the crop by any positive constant. (asinh is computed as sign * log1p(..): torch's
   own asinh kernel is ~6x slower on CPU, and this module runs before every model on every crop.)
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cropray.errors import ConfigError
from cropray.models.physics_np import SAMPLES, subsample_stride  # noqa: F401 - one definition, torch-free

COMPRESS = ("asinh", "none")
SUBSAMPLE_NOTE = "3rd (5th, 7th: the first coprime with W leaving >= 512)"
MAD_TO_SIGMA = 1.4826  # MAD of a Gaussian -> its standard deviation


def preprocess_kwargs(*, flatten: bool, flatten_window: int, row_center: bool, compress: str) -> dict:
    """The preprocessing hparams every model carries (checked here once for all models)."""
    if compress not in COMPRESS:
        raise ConfigError(f"compress={compress!r} is not one of {', '.join(COMPRESS)}")
    if int(flatten_window) != flatten_window or flatten_window < 3 or flatten_window % 2 == 0:
        raise ConfigError(f"flatten_window={flatten_window!r} must be an odd integer >= 3")
    return {"flatten": bool(flatten), "flatten_window": int(flatten_window),
            "row_center": bool(row_center), "compress": str(compress)}


def running_median(x: torch.Tensor, window: int) -> torch.Tensor:
    """Median over a sliding window along the last axis; the output keeps the length.

    Edges are padded by point reflection about the robust edge level (median of the 3 outermost values,
    placed at the second channel), which continues a linear slope exactly: plain mirror padding would
    bend a steep bandpass at the crop edges. A tone in an edge channel does not move the anchor.
    """
    n = x.shape[-1]
    k = min(window, n - 2 if n % 2 else n - 3)  # the padding reads h + 2 values from each edge
    if k < 3:
        return x
    h = k // 2
    a_lo = x[..., :3].median(dim=-1, keepdim=True).values  # (..., 1) level at channel 1
    a_hi = x[..., -3:].median(dim=-1, keepdim=True).values  # (..., 1) level at channel n - 2
    lo = 2 * a_lo - x[..., 3:h + 3].flip(-1)  # channels -h .. -1 mirror 2 + h .. 3 about channel 1
    hi = 2 * a_hi - x[..., n - h - 3:n - 3].flip(-1)  # channels n .. n+h-1 mirror n-4 .. n-3-h
    xp = torch.cat([lo, x, hi], dim=-1)  # (..., n + 2h)
    return xp.unfold(-1, k, 1).median(dim=-1).values  # (..., n)


def fast_asinh(z: torch.Tensor) -> torch.Tensor:
    """asinh(z) = sign(z) * log1p(|z| + z^2 / (1 + sqrt(1 + z^2))), within 3e-7 of torch.asinh.

    When z needs a gradient (saliency w.r.t. the input) torch.asinh is used: the sign/abs/where form has
    a wrong derivative at exactly 0. Training never needs it: crops do not require grad.
    """
    if z.requires_grad:
        return torch.asinh(z)
    a = z.abs()
    s = a.clamp(max=1e9)  # s * s stays finite in float32; above 1e9, asinh(a) = log(2a) to 1e-19
    small = torch.log1p(s + s * s / (1 + torch.sqrt(s * s + 1)))
    return torch.copysign(torch.where(a > 1e9, torch.log(a.clamp(min=1e9)) + math.log(2.0), small), z)


class RobustNorm(nn.Module):
    """(B, 1, H, W) raw power -> (B, 1, H, W) float32, scale-free, noise ~ N(0, 1)-like. No parameters."""

    def __init__(self, *, flatten: bool = True, flatten_window: int = 15, row_center: bool = False,
                 compress: str = "asinh"):
        super().__init__()
        cfg = preprocess_kwargs(flatten=flatten, flatten_window=flatten_window,
                                row_center=row_center, compress=compress)
        self.flatten = cfg["flatten"]
        self.flatten_window = cfg["flatten_window"]
        self.row_center = cfg["row_center"]
        self.compress = cfg["compress"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        b = x.shape[0]
        if self.flatten:
            prof = x.median(dim=2).values  # (B, 1, W) per-channel level over time
            base = running_median(prof, self.flatten_window)  # (B, 1, W) smooth, blind to narrow tones
            # Channels at zero power (e.g. uint8 crops) must not divide by ~0; floor relative to the
            # crop's own level so the floor scales with the input (keeps scale invariance).
            floor = 1e-3 * base.abs().mean(dim=-1, keepdim=True) + 1e-30
            x = x / torch.maximum(base, floor).unsqueeze(2)  # (B, 1, H, W), noise level ~1
        if self.row_center:
            x = x - x.median(dim=3, keepdim=True).values  # (B, 1, H, 1) broadband impulse level
        flat = x.reshape(b, -1)  # (B, H*W)
        sub = flat[:, ::subsample_stride(flat.shape[1], x.shape[-1])]  # (B, ~H*W/3) view, no copy
        med = sub.median(dim=1, keepdim=True).values  # (B, 1)
        mad = (sub - med).abs().median(dim=1, keepdim=True).values  # (B, 1)
        floor = 1e-6 * sub.abs().mean(dim=1, keepdim=True) + 1e-30  # constant crops: no 0/0
        scale = torch.maximum(MAD_TO_SIGMA * mad, floor)  # (B, 1)
        z = (flat - med) / scale  # (B, H*W)
        if self.compress == "asinh":
            z = fast_asinh(z)
        return z.reshape(x.shape)

    def describe(self) -> dict:
        """JSON-able description for the bundle manifest."""
        return {"module": "RobustNorm", "axes": "H=time, W=frequency", "flatten": self.flatten,
                "flatten_window": self.flatten_window, "row_center": self.row_center,
                "compress": self.compress, "center": "median", "scale": "1.4826*MAD",
                "sample": f"every {SUBSAMPLE_NOTE} pixel for the global median and MAD"}

    def extra_repr(self) -> str:
        return (f"flatten={self.flatten}, flatten_window={self.flatten_window}, "
                f"row_center={self.row_center}, compress={self.compress!r}")
