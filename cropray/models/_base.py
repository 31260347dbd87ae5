"""What every cropray model shares: preprocessing module, JSON-able hparams, the training interface.

Every model works in two domains: `forward(x)` takes raw power and runs `self.preprocess` (RobustNorm)
then `score(z)` on the normalised crops. The training interface takes normalised crops too, so the
trainer can normalise a training set once and never touch (or swap) a model's preprocessing:

    loss_inputs(z)  what the loss consumes: (B,) logits ("logit" family) or (B, D) embeddings ("metric")
    score_from(out) (B,) scores from loss_inputs' output (validation needs no second forward)
    finalize(parts, batched)  state set from labelled data rather than learned (the Siamese gallery)
    score_variants(z, batched)  alternative scoring rules worth a CV metric (the Siamese gallery rules)

What an architecture *declares* (defaults, loss family, score meaning, budget, regimes) is its
`ArchSpec` (policy.py, torch-free), bound to the class as `cls.spec` by `register_model`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import ClassVar

import torch
from torch import nn

from cropray.errors import ConfigError
from cropray.models.policy import ArchSpec
from cropray.models.preprocess import RobustNorm, preprocess_kwargs

PREPROCESS_KEYS = ("flatten", "flatten_window", "row_center", "compress")
# batched(fn, crops): fn (normalised (b, 1, H, W) -> tensor) applied chunk-wise to the crops the trainer
# holds (raw or already normalised: `batched` normalises when needed), outputs concatenated.
Batched = Callable[[Callable[[torch.Tensor], torch.Tensor], torch.Tensor], torch.Tensor]


class CropModel(nn.Module):
    """Base class: `forward(x (B,1,H,W) raw) -> (B,) float32 score`, higher = more signal-like.

    `hparams` (a JSON-able dict) rebuilds the module: `build_model(m.arch_name, **m.hparams)`; learned
    state (weights, BN statistics, a Siamese gallery) lives in the state dict.
    """

    arch_name: ClassVar[str] = ""
    spec: ClassVar[ArchSpec]  # set by register_model
    finalized_state: ClassVar[tuple[str, ...]] = ()  # state-dict key prefixes `finalize` sets (not learned,
    #   so never averaged into an EMA copy)
    variants_metric: ClassVar[str] = ""  # CV metrics key for `score_variants`' ROC-AUCs ("" = none)

    def _init_common(self, hparams: dict) -> None:
        pre = preprocess_kwargs(**{k: hparams[k] for k in PREPROCESS_KEYS})
        self._hparams = {**hparams, **pre}
        self.preprocess = RobustNorm(**pre)

    @property
    def trainable(self) -> bool:
        """False for label-free models (spec.fit_free): nothing to fit, labels only set the threshold."""
        return not self.spec.fit_free

    @property
    def hparams(self) -> dict:
        return copy.deepcopy(self._hparams)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.score(self.preprocess(x))  # (B,)

    def score(self, z: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) normalised crops -> (B,) float32 score."""
        raise NotImplementedError

    def loss_inputs(self, z: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) normalised crops -> what the training loss consumes."""
        raise NotImplementedError(f"{self.arch_name} is label-free: nothing to train")

    def score_from(self, out: torch.Tensor) -> torch.Tensor:
        """loss_inputs' output -> (B,) scores, as `score` would give on the same crops."""
        raise NotImplementedError(f"{self.arch_name} is label-free: nothing to train")

    def finalize(self, parts: Sequence[tuple[torch.Tensor, torch.Tensor]], batched: Batched) -> None:
        """Set state that comes from labelled crops (parts: (crops, labels) pairs), not from gradients."""

    def score_variants(self, z: torch.Tensor, batched: Batched) -> dict[str, torch.Tensor]:
        """{rule: (N,) scores} of alternative scoring rules from one pass over z ({} when none)."""
        return {}

    def state_summary(self) -> dict:
        """Facts about learned state worth showing in a bundle manifest (e.g. gallery size)."""
        return {}

    def bundle_problem(self) -> str | None:
        """Why this model cannot be saved as a bundle yet (e.g. no gallery), or None when it can."""
        return None


class LogitModel(CropModel):
    """A model with one logit per crop ("logit" loss family): score = sigmoid(logit).

    Subclasses implement `logits_normalised(z)`; `logits(x)` takes raw crops (BCE / focal loss)."""

    def logits_normalised(self, z: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) normalised crops -> (B,) raw logit."""
        raise NotImplementedError

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) raw power -> (B,) raw logit."""
        return self.logits_normalised(self.preprocess(x))

    def score(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits_normalised(z))

    def loss_inputs(self, z: torch.Tensor) -> torch.Tensor:
        return self.logits_normalised(z)

    def score_from(self, out: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(out)


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
