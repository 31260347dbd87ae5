"""A cascade in front of the network: crops the label-free track statistic rules out skip the CNN.

The statistic is the `dedoppler` baseline's (best straight-track SNR of the robustly normalised crop,
cropray.models.taylor, with the baseline's preprocessing: row centring, asinh): one numpy
normalisation and one Taylor tree per crop, a fraction of a CNN forward. Real archives are mostly
noise, and noise has low track SNR, so most crops of a real archive never reach the network.

The cut: a crop is ruled out when its statistic is below `cut`; ruled-out crops get a score below
the bundle's threshold (`floor * stat / cut`, floor = min(threshold, the lowest network score of a
kept calibration crop) / 2: they keep the statistic's order among themselves and sit under every
crop the network flagged) and is_signal False. The cut is set so that at most `max_loss` (0.1%) of
the crops the *model* flags as signal are ruled out -- recall lost relative to the model, measured
on crops with known answers:

* bundles carry no labels, so at scoring start the cut comes from the bundle's calibration crops
  (training crops) and the model's own decisions on them (`calibrate`). With n flagged crops a
  rank bound certifies a loss <= k/(n+1) for the k-th smallest statistic; below 999 flagged crops no
  rank certifies 0.1%, so the cut goes under the smallest flagged statistic by the width of the
  flagged crops' lower tail (smallest to 10th percentile) -- a heuristic margin, checked by
  `cropray bench` on 10k+ labelled crops (README, Performance), not a guarantee;
* a caller with labelled crops passes them to `calibrate` instead (the bench does).

Not for a model whose score the statistic says nothing about: the calibration reports the fraction of
calibration crops it would skip, and `cropray bench` shows the speed-up by positive fraction.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from cropray.fastpath.preprocess import robust_norm_numpy

MAX_LOSS = 0.001  # recall lost (relative to the model's own decisions) the cut may cost
NORM = {"flatten": True, "flatten_window": 15, "row_center": True, "compress": "asinh"}  # dedoppler's
WIDTHS = (1, 2)


def _track_snr():
    """The Taylor-tree statistic, from wherever this version keeps it (models/taylor.py since the split)."""
    try:
        from cropray.models.taylor import track_snr
    except ImportError:  # older layout: the dedoppler module held it
        from cropray.models.dedoppler import track_snr
    return track_snr


class _Stat(torch.nn.Module):
    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B,1,H,W) normalised -> (B,)
        return _track_snr()(z[:, 0], WIDTHS)


_SESSIONS: dict = {}


def _stat_fn(shape: tuple[int, int]):
    """The Taylor tree as an ONNX Runtime session when installed: 3.6k crops/s on 2 cores where torch's
    pads and concatenations give 0.4-1.9k (measured idle, 128 crops a call); torch otherwise."""
    from cropray.fastpath import onnx_path

    key = (shape, torch.get_num_threads())
    if key not in _SESSIONS:
        fn = None
        if onnx_path.available()[0]:
            try:
                sess = onnx_path.session(onnx_path.export_network(_Stat().eval(), torch.zeros(2, 1, *shape)),
                                         torch.get_num_threads())
                fn = lambda z: sess.run(None, {onnx_path.INPUT: z})[0]  # noqa: E731
            except Exception:  # noqa: BLE001 - torch computes the same numbers
                fn = None
        if fn is None:
            def fn(z):
                with torch.inference_mode():
                    return _Stat()(torch.from_numpy(z)).numpy()
        _SESSIONS[key] = fn
    return _SESSIONS[key]


def track_stat(x: np.ndarray) -> np.ndarray:
    """(B,1,H,W) raw crops -> (B,) float32 best straight-track SNR (the dedoppler score); +inf for a crop
    with non-finite values (never ruled out: the network and the quarantine decide about it)."""
    x = np.asarray(x, dtype=np.float32)
    finite = np.isfinite(x).reshape(len(x), -1).all(axis=1)  # (B,)
    out = np.full(len(x), np.inf, np.float32)
    if finite.any():
        z = np.ascontiguousarray(robust_norm_numpy(x[finite], **NORM))  # (b,1,H,W)
        out[finite] = np.asarray(_stat_fn(tuple(x.shape[2:]))(z), np.float32).reshape(-1)
    return out


@dataclass(frozen=True)
class Cut:
    cut: float  # crops with track stat < cut skip the network
    floor: float  # ruled-out scores lie in [0, floor)
    n: int  # calibration crops
    n_flagged: int  # of them, flagged by the model (or labelled positive)
    flagged_lost: int  # flagged crops below the cut on the calibration set
    skip_fraction: float  # calibration crops below the cut
    certified: bool  # True: a rank bound gives loss <= max_loss; False: the tail-width margin was used
    source: str  # "calibration crops, model decisions" | "labelled crops"

    def to_dict(self) -> dict:
        return asdict(self)


def calibrate(stat: np.ndarray, flagged: np.ndarray, scores: np.ndarray, threshold: float, *,
              max_loss: float = MAX_LOSS, source: str = "calibration crops, model decisions") -> Cut | None:
    """The cut from calibration crops: stat (n,) track statistic, flagged (n,) bool (model says signal,
    or label 1), scores (n,) the model's scores. None when nothing is flagged (no basis for a cut)."""
    stat = np.asarray(stat, np.float64)
    flagged = np.asarray(flagged, bool)
    pos = np.sort(stat[flagged & np.isfinite(stat)])
    if len(pos) == 0:
        return None
    k = math.floor(max_loss * (len(pos) + 1))
    if k >= 1:  # a new flagged crop falls below the k-th smallest with probability <= k / (n + 1)
        cut, certified = float(pos[k - 1]), True
    else:
        q10 = float(np.quantile(pos, 0.10))
        cut, certified = float(pos[0] - (q10 - pos[0])), False
    kept = stat >= cut
    low = float(np.min(scores[kept])) if kept.any() else float(threshold)
    floor = max(0.0, min(float(threshold), low)) / 2
    return Cut(cut=cut, floor=floor, n=len(stat), n_flagged=len(pos),
               flagged_lost=int(np.count_nonzero(pos < cut)), skip_fraction=float(np.mean(stat < cut)),
               certified=certified, source=source)


class CascadeScorer:
    """Wraps a fastpath Scorer: x (B,1,H,W) -> (B,) scores, the network run only on crops kept by `cut`."""

    def __init__(self, scorer, cut: Cut):
        self.scorer, self.cut = scorer, cut
        self.threshold = scorer.threshold
        self.rows = self.skipped = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        s = track_stat(x)  # (B,)
        keep = s >= self.cut.cut
        out = np.empty(len(x), np.float32)
        ruled = ~keep
        # in [0, floor): the statistic's order among ruled-out crops, under every flagged crop
        out[ruled] = self.cut.floor * np.clip(s[ruled] / max(self.cut.cut, 1e-6), 0.0, 1.0 - 1e-6)
        if keep.any():
            out[keep] = self.scorer(x[keep] if ruled.any() else x)
        self.rows += len(x)
        self.skipped += int(np.count_nonzero(ruled))
        return out

    def describe(self) -> dict:
        d = self.scorer.describe()
        return {**d, "path": f"{d['path']}+cascade", "network_path": d["path"],
                "cascade": {**self.cut.to_dict(), "rows": self.rows, "skipped": self.skipped}}


def build_cascade(scorer, calibration: np.ndarray | None, threshold: float | None) -> tuple[object, dict]:
    """(CascadeScorer or the scorer itself, note): the cut set on the bundle's calibration crops."""
    if calibration is None or len(calibration) == 0 or threshold is None:
        return scorer, {"cascade": "off: the bundle has no calibration crops or no threshold to set a cut on"}
    cal = np.ascontiguousarray(calibration, dtype=np.float32)
    scores = scorer(cal)
    cut = calibrate(track_stat(cal), scores >= threshold, scores, threshold)
    if cut is None:
        return scorer, {"cascade": "off: the model flags none of the calibration crops"}
    return CascadeScorer(scorer, cut), {}
