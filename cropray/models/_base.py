"""What every cropray model shares: its preprocessing module, JSON-able hparams, hparam checks."""

from __future__ import annotations

import copy

import torch
from torch import nn

from cropray.errors import ConfigError
from cropray.models.preprocess import RobustNorm, preprocess_kwargs

PREPROCESS_KEYS = ("flatten", "flatten_window", "row_center", "compress")
# CNNs add the de-Doppler statistic as a learned logit term by default (models/track_prior.py).
TRACK_PRIOR = True


class CropModel(nn.Module):
    """Base class: `forward(x (B,1,H,W) raw) -> (B,) float32 score`, higher = more signal-like.

    `hparams` (a JSON-able dict) rebuilds the module: `build_model(m.arch_name, **m.hparams)`; learned
    state (weights, BN statistics, a Siamese gallery) lives in the state dict.
    """

    arch_name: str = ""
    trainable: bool = True  # False for label-free baselines (no parameters to fit)

    def _init_common(self, hparams: dict) -> None:
        pre = preprocess_kwargs(**{k: hparams[k] for k in PREPROCESS_KEYS})
        self._hparams = {**hparams, **pre}
        self.preprocess = RobustNorm(**pre)

    def _init_track(self, track_prior, row_center) -> tuple[bool, bool]:
        """The CNNs' de-Doppler track prior (track_prior.py): sets `self.track` (or None) and returns
        (prior, row_center); row centring defaults to on with the prior (the statistic needs it)."""
        from cropray.models.track_prior import TrackPrior

        prior = check_bool("track_prior", track_prior)
        self.track = TrackPrior() if prior else None
        return prior, prior if row_center is None else row_center

    def _plus_track(self, logit: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """(B,) CNN logit + the prior's scale * (track SNR - offset) of the normalised crop z (B,1,H,W)."""
        return logit if self.track is None else logit + self.track(z)

    @property
    def hparams(self) -> dict:
        return copy.deepcopy(self._hparams)

    def state_summary(self) -> dict:
        """Facts about learned state worth showing in a bundle manifest (e.g. gallery size)."""
        return {}

    def bundle_problem(self) -> str | None:
        """Why this model cannot be saved as a bundle yet (e.g. no gallery), or None when it can."""
        return None


def check_float(name: str, value, lo: float, hi: float, *, hi_open: bool = False) -> float:
    """A float hparam in [lo, hi] (or [lo, hi)); ConfigError naming the range otherwise."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r} must be a number") from None
    if not (lo <= v <= hi) or (hi_open and v == hi):
        raise ConfigError(f"{name}={value!r} out of range [{lo}, {hi}{')' if hi_open else ']'}")
    return v


def check_int(name: str, value, lo: int, hi: int) -> int:
    """An int hparam in [lo, hi]; ConfigError naming the range otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) and not (
            isinstance(value, float) and value.is_integer()):
        raise ConfigError(f"{name}={value!r} must be an integer in [{lo}, {hi}]")
    if not lo <= int(value) <= hi:
        raise ConfigError(f"{name}={value!r} out of range [{lo}, {hi}]")
    return int(value)


def check_bool(name: str, value) -> bool:
    """A true/false hparam (JSON booleans only: "false" or 0 would silently mean something else)."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} must be true or false")
    return value


def check_channels(name: str, value, n: int) -> list[int]:
    """A list of `n` positive channel widths."""
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise ConfigError(f"{name}={value!r} must be a list of {n} integers")
    return [check_int(f"{name}[{i}]", c, 1, 4096) for i, c in enumerate(value)]


def conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """conv3x3 (no bias: BN follows) -> BN -> ReLU; keeps H, W when stride is 1."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))
