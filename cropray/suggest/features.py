"""`SuggestFeatures`: what `cropray suggest` needs from each scored crop besides its score.

Computed inside the scoring actor (ScoreBatch with `features > 0`), on the crops it already decoded:

- a small feature vector (B, d): the model's own penultimate features (the input of its head: the
  global-average-pooled trunk of the CNNs, the pooled encoder of the Siamese model), projected to d
  dimensions by a fixed random Gaussian matrix. Why a random projection: it keeps pairwise distances
  (Johnson-Lindenstrauss) at a fraction of the bytes that travel back to the driver (d = 16: 64 bytes
  a row against 16 KB of crop), and every actor builds the same matrix from a fixed seed, so vectors
  from different actors are comparable. Models without a pooled trunk (the `dedoppler` baseline) use
  the normalised crop average-pooled to 8 x 8 instead.
- the label-free track statistic (B,): the `dedoppler` baseline's best straight-track SNR with its
  default preprocessing, so "model vs physics" disagreements can be found without labels.

This runs the plain fp32 model a second time (the fast path that produced the scores exposes only
scores), which is why it is off for `cropray score`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from cropray.models.track_prior import INIT_OFFSET, INIT_SCALE

PROJECTION_SEED = 20240  # same matrix in every actor and every run
FALLBACK_GRID = 8  # (8 x 8) pooled normalised crop for models without a pooled trunk
# The track statistic's label-free decision rule: its logit is TRACK_SCALE * (stat - TRACK_OFFSET),
# offset at the 95th percentile of the statistic over noise-only crops (models/track_prior.py).
TRACK_OFFSET, TRACK_SCALE = INIT_OFFSET, INIT_SCALE


def projection(n_in: int, dim: int) -> np.ndarray:
    """(n_in, dim) float32 Gaussian matrix / sqrt(dim), identical for identical arguments."""
    rng = np.random.default_rng([PROJECTION_SEED, n_in, dim])
    return (rng.standard_normal((n_in, dim)) / np.sqrt(dim)).astype(np.float32)


class SuggestFeatures:
    """Callable: x (B, 1, H, W) float32 raw crops -> (features (B, dim) float32, track (B,) float32)."""

    def __init__(self, model: torch.nn.Module, dim: int = 16):
        from cropray.models import build_model
        from cropray.models.policy import baseline_arch

        if not 1 <= int(dim) <= 256:
            raise ValueError(f"feature dim must be in [1, 256], got {dim}")
        self.model = model.eval()
        self.dim = int(dim)
        self.track = build_model(baseline_arch()).eval()  # label-free baseline, default settings
        self._pool = getattr(model, "pool", None)  # AdaptiveAvgPool2d of the CNNs and the Siamese encoder
        self._proj: torch.Tensor | None = None
        self._captured: list[torch.Tensor] = []
        if isinstance(self._pool, torch.nn.Module):
            self._pool.register_forward_hook(lambda _m, _i, out: self._captured.append(out))
        else:
            self._pool = None

    def _raw_features(self, t: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) -> (B, C) penultimate features (or the pooled normalised crop)."""
        if self._pool is None:
            z = self.model.preprocess(t) if hasattr(self.model, "preprocess") else t
            return F.adaptive_avg_pool2d(z, FALLBACK_GRID).flatten(1)  # (B, 64)
        self._captured.clear()
        self.model(t)
        return self._captured[-1].flatten(1)  # (B, C) from the last pooled map

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))  # (B, 1, H, W)
        with torch.inference_mode():
            h = self._raw_features(t).float()  # (B, C)
            if self._proj is None or self._proj.shape[0] != h.shape[1]:
                self._proj = torch.from_numpy(projection(h.shape[1], self.dim))
            f = h @ self._proj  # (B, dim)
            s = self.track(t).float()  # (B,) track SNR
        return f.numpy().astype(np.float32, copy=False), s.numpy().astype(np.float32, copy=False)


def track_logit(track: np.ndarray) -> np.ndarray:
    """(N,) track statistic -> (N,) label-free logit (> 0: physics says signal)."""
    return TRACK_SCALE * (np.asarray(track, np.float64) - TRACK_OFFSET)


FEAT, TRACK = "_feat", "_track"  # ScoreBatch's extra output columns (underscore: never committed)


def extra_columns(fn: SuggestFeatures, x: np.ndarray, valid: np.ndarray) -> dict:
    """The extra columns of one ScoreBatch output table: `_feat` fixed_size_list<float32>[dim] and
    `_track` float32, one row per input row; x (n_valid, 1, H, W) are the decoded rows where
    `valid` (n,) is True, other rows get zeros / null."""
    import pyarrow as pa

    n = len(valid)
    feat = np.zeros((n, fn.dim), np.float32)
    track = np.zeros(n, np.float32)
    if len(x):
        feat[valid], track[valid] = fn(x)
    values = pa.array(feat.reshape(-1))
    return {FEAT: pa.FixedSizeListArray.from_arrays(values, fn.dim),
            TRACK: pa.array(track, mask=~valid)}
