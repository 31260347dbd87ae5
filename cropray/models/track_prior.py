"""`TrackPrior`: the de-Doppler statistic as the anchor of a CNN's logit; the CNN learns a correction.

    logit(x) = scale * (track_snr(z) - offset) + correction(z),   z = RobustNorm(x)

`track_snr` is the label-free `dedoppler` score (the best straight-track SNR, cropray.models.taylor)
computed on the CNN's own normalised crop; `scale`/`offset` are two learned scalars; `correction` is
the CNN trunk + linear head.

Anchoring (hparam `anchor`, default on): the model *starts as* the calibrated de-Doppler score and
moves away from it only where the training crops pull it.
- The head's weights and bias start at zero, so the correction is exactly 0 at initialisation and an
  untrained model ranks crops exactly as `dedoppler` does (its logit is an increasing affine function
  of the statistic). The trunk still gets gradients from the second step on (once the head is nonzero).
- `anchor_l2` (default 0.05) is an L2 penalty on the correction's logit, anchor_l2 * mean(correction^2)
  over each training batch (`anchor_penalty`, added to the loss by the trainer): a function-space
  pull toward physics, independent of how the trunk parametrises it (weight decay on the head would
  not bound the logit: the trunk can grow its features instead). At 0.05 a correction of 1 logit on
  every crop costs 0.05, a tenth of one crop's BCE at p = 0.6: it keeps the fold models' corrections
  on physics' scale (so their pooled out-of-fold scores stay comparable) without holding back what the
  labels teach. Measured on the outside simulator (fresh ROC-AUC of the CNN alone, 2,000 fresh
  crops; de-Doppler alone 0.807; docs/quality_outside.md):

  | anchor_l2 | 50 labels, shallow | 200 labels, shallow | 1,000 labels, deep | deep's pooled CV at 1,000 |
  |---|---|---|---|---|
  | 0.5 (the previous default) | 0.810 | 0.816 | 0.815 | 0.809 |
  | 0.05 | 0.805 | 0.837 | 0.853 | 0.827 |
  | 0 (zero head, no penalty) | - | 0.837 | 0.853 | 0.802 |

  0.5 held the learned models at physics from 200 labels on; 0 learns as much as 0.05 but its fold
  models drift apart in scale, so its pooled CV read 0.802, physics' figure, and the paired rule could
  not ship it. At 50 labels nothing beats physics (the paired rule ships `dedoppler` either way). An
  earlier small run (50 labels, 12 epochs, 800 fresh crops, one seed; research/injection_modes.py) read
  0.05 -> 0.777, 0.5 -> 0.796, 5 -> 0.795, within each other's +-0.03 intervals.
  Measured and dropped: a pull weakened as labels accumulate (0.5 x min(1, 40 / labelled training
  crops)). It lifted the CNN alone at 200 labels (0.834 vs 0.816) but at 1,000 labels no candidate
  proved a gain (shallow_cnn +0.012 [-0.004, +0.028]) and physics shipped (0.807).
- `calibrate` (default on): before training, the trainer fits scale/offset by a 2-parameter logistic
  regression of the labels on the statistic of the training split (`calibrate_prior`), so the start is
  the de-Doppler score calibrated on the user's own labels, not on this repo's generator. It keeps
  INIT_* when the fit would be degenerate (one class, or a non-increasing fit: the labels do not rank
  with the statistic) and clamps the slope to SCALE_RANGE (few separable labels drive it to infinity).
Without `anchor` the head starts at PyTorch's random init and nothing pulls it back (the old behaviour).

Why: on straight drifting tracks the de-Doppler search is close to the optimal detector, and with
50-200 labels a CNN added to it from a random start generalised worse than the statistic alone on
fresh crops of another simulator (0.955-0.960 vs 0.965 ROC-AUC): it learned more noise than signal
and nothing pulled it back. What the CNN can still add are the cases the statistic gets wrong:
bright blobs, wideband bumps and impulse trains along a track, weak tracks that bend or fade.

The term is fp32 in every execution path (bf16 autocast wraps only the conv trunks) and is traced by
torch.compile like the rest of the network.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from cropray.models._base import check_bool, check_float
from cropray.models.taylor import track_snr

TRACK_PRIOR = True  # the CNNs add the statistic as a learned logit term by default
ANCHOR = True  # zero-initialised head + penalty on its logit (module doc)
ANCHOR_L2 = 0.05  # weight of mean(correction^2) in the training loss (module doc: measured)
CALIBRATE = True  # fit scale/offset on the training labels before training
WIDTHS = (1, 2)  # boxcar widths of the track search, as the dedoppler baseline's defaults
# Initial offset/scale, from the statistic on noise-only crops (row-centred, asinh; 1,500 synthetic
# negatives): percentiles 5/50/95 = 3.2/4.0/5.9. The offset sits at the noise's 95th percentile, so a
# crop starts with a positive prior only when its best track beats 95% of noise; the scale puts the
# noise median at -3 logits. (A logistic fit of the statistic alone on labelled crops gives 1.7 and
# 6.2: the same place.) Used when the labels cannot calibrate the prior (`calibrate_prior`).
INIT_OFFSET = 6.0
INIT_SCALE = 1.5
SCALE_RANGE = (0.1, 5.0)  # logistic slope kept in this range (logits per unit of track SNR)
CALIB_C = 1.0  # inverse L2 strength of the 2-parameter logistic fit (sklearn's C)


class TrackPrior(nn.Module):
    """(B, 1, H, W) normalised crops -> (B,) logit term scale * (track_snr - offset)."""

    def __init__(self, widths=WIDTHS):
        super().__init__()
        self.widths = tuple(int(w) for w in widths)
        self.scale = nn.Parameter(torch.tensor(INIT_SCALE))
        self.offset = nn.Parameter(torch.tensor(INIT_OFFSET))

    def statistic(self, z: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) normalised crops -> (B,) fp32 track SNR (the `dedoppler` score)."""
        return track_snr(z[:, 0].float(), self.widths)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.scale * (self.statistic(z) - self.offset)


def logistic_fit(stat: np.ndarray, y: np.ndarray, balanced: bool = True) -> tuple[float, float] | None:
    """(scale, offset) of P(y=1) = sigmoid(scale * (stat - offset)), or None when the fit is degenerate
    (one class, or a non-positive slope). stat, y: (N,). Slope clamped to SCALE_RANGE."""
    from sklearn.linear_model import LogisticRegression

    stat, y = np.asarray(stat, np.float64), np.asarray(y).astype(np.int64)
    ok = np.isfinite(stat)
    stat, y = stat[ok], y[ok]
    if len(np.unique(y)) < 2:
        return None
    lr = LogisticRegression(C=CALIB_C, class_weight="balanced" if balanced else None).fit(stat[:, None], y)
    a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    if not a > 0:
        return None
    scale = min(max(a, SCALE_RANGE[0]), SCALE_RANGE[1])
    return scale, -b / a  # the offset is where the fit crosses 1/2; the clamp keeps it there


class TrackPriorMixin:
    """The part a CNN composes to own a track prior: `self.track` (a TrackPrior, or None when off) and
    the anchoring of its head (module doc).

    Used by the CNN classes (cnn.py, resnet.py), not by CropModel: the prior is a CNN feature, and the
    Siamese encoder or the dedoppler baseline have no logit to add it to. The class sets `self.head`
    (nn.Linear -> 1 logit) and calls `_anchor_head()` after building it.
    """

    track: TrackPrior | None
    head: nn.Linear

    def _init_track(self, track_prior, row_center, anchor=ANCHOR, anchor_l2=ANCHOR_L2,
                    calibrate=CALIBRATE) -> tuple[bool, bool, dict]:
        """Sets `self.track`; returns (prior on?, row_center, the anchoring hparams). Row centring
        defaults to on with the prior (the statistic needs it) and to off without it; anchoring and
        calibration are off without the prior (there is nothing to anchor to)."""
        prior = check_bool("track_prior", track_prior)
        self.track = TrackPrior() if prior else None
        anchor, calibrate = check_bool("anchor", anchor), check_bool("calibrate", calibrate)
        l2 = check_float("anchor_l2", anchor_l2, 0.0, 100.0)
        self._anchored = prior and anchor
        self._anchor_l2 = l2 if self._anchored else 0.0
        self._calibrate = prior and calibrate
        self._correction = None  # (B,) the head's logit of the last training forward (for the penalty)
        hp = {"anchor": anchor, "anchor_l2": l2, "calibrate": calibrate}
        return prior, prior if row_center is None else row_center, hp

    def _anchor_head(self) -> None:
        """Zero the head so the correction starts at exactly 0 (only when anchored)."""
        if self._anchored:
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def _plus_track(self, logit: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """(B,) CNN correction + scale * (track SNR - offset) of the normalised crop z (B, 1, H, W)."""
        if self.training and self._anchor_l2 > 0:
            self._correction = logit
        return logit if self.track is None else logit + self.track(z)

    def anchor_penalty(self) -> torch.Tensor | None:
        """anchor_l2 * mean(correction^2) of the last training forward (a scalar tensor), or None when
        the model is not anchored. Zero at initialisation (the head is zero)."""
        c, self._correction = self._correction, None
        if c is None:
            return None
        return self._anchor_l2 * c.float().pow(2).mean()

    @property
    def calibrates_prior(self) -> bool:
        return self.track is not None and self._calibrate

    @torch.no_grad()
    def calibrate_prior(self, stat: np.ndarray, y: np.ndarray, balanced: bool = True) -> dict:
        """Set scale/offset from a logistic fit of labels y (N,) on the statistic stat (N,) (the
        training split's `track.statistic`). Returns what was done, for the training record."""
        fit = logistic_fit(stat, y, balanced) if self.calibrates_prior else None
        if fit is None:
            return {"calibrated": False, "scale": float(self.track.scale) if self.track is not None else None,
                    "offset": float(self.track.offset) if self.track is not None else None}
        self.track.scale.fill_(fit[0])
        self.track.offset.fill_(fit[1])
        return {"calibrated": True, "scale": float(fit[0]), "offset": float(fit[1]), "n": int(len(y))}
