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
Eager CPU inference on raw crops runs the whole path in numpy (cropray.models.physics_np: scores within
1e-5 of the torch code, ~5x faster on one thread); training, tracing and export run the torch code.
"""

from __future__ import annotations

import numpy as np
import torch

from cropray.errors import ConfigError
from cropray.models._base import CropModel, check_int
from cropray.models._registry import register_model
from cropray.models.physics_np import dedoppler_score_np
from cropray.models.preprocess import RobustNorm
from cropray.models.taylor import eager_cpu, track_snr


@register_model("dedoppler")
class Dedoppler(CropModel):
    """Best straight-track (de-Doppler) SNR of the robustly normalised crop. Not trained (spec: fit-free)."""

    def __init__(self, *, widths=(1, 2), flatten: bool = True, flatten_window: int = 15,
                 row_center: bool = True, compress: str = "asinh"):
        super().__init__()
        if not isinstance(widths, (list, tuple)) or not widths:
            raise ConfigError(f"widths={widths!r} must be a non-empty list of boxcar widths (channels)")
        ws = sorted({check_int("widths[]", w, 1, 32) for w in widths})
        self._init_common({"widths": ws, "flatten": flatten, "flatten_window": flatten_window,
                           "row_center": row_center, "compress": compress})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) raw power -> (B,) score; numpy for eager CPU inference on finite crops."""
        pre = self.preprocess
        if x.dim() == 4 and x.shape[1] == 1 and type(pre) is RobustNorm and eager_cpu(x):
            xn = x.float().numpy()  # zero-copy for float32
            if np.isfinite(xn).all():  # torch's medians order NaN/inf their own way: leave those to it
                cfg = {"widths": self._hparams["widths"], "flatten": pre.flatten,
                       "flatten_window": pre.flatten_window, "row_center": pre.row_center, "compress": pre.compress}
                # as many threads as torch would use (what a caller set with torch.set_num_threads)
                return torch.from_numpy(dedoppler_score_np(xn, cfg, threads=torch.get_num_threads()))
        return super().forward(x)

    def score(self, z: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, W) normalised crops (noise ~ unit scale) -> (B,) best track SNR."""
        return track_snr(z[:, 0], self._hparams["widths"])
