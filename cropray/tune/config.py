"""Sweep configuration: one small typed dataclass, free of torch and Ray, validated on construction.

`TuneConfig.to_dict()` is written beside every sweep (`tune_config.json`) and read back by `--resume`,
so a resumed sweep runs with exactly the settings it started with.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any

from cropray.errors import ConfigError
from cropray.models.policy import REGIMES

# `regime` values: auto (by label count) or a regime of the one regime table (cropray.models.policy)
REGIME_CHOICES = ("auto", *(r.name for r in REGIMES))
SEARCHES = ("auto", "optuna", "random")
# Objective name -> (mode, meaning). Every one is reported after every epoch, so ASHA can act on it.
METRICS: dict[str, tuple[str, str]] = {
    "cv_auc": ("max", "mean ROC-AUC over the k held-out folds"),
    "cv_auc_lcb": ("max", "cv_auc minus its spread over folds (prefers stable configurations)"),
    "val_auc": ("max", "mean ROC-AUC on the folds' inner early-stopping splits (noisier)"),
}
# Upper bounds (inclusive) of the size fields: beyond them a sweep cannot finish on any cluster.
LIMITS = {"samples": 10_000, "epochs": 1_000, "reduction_factor": 100, "seed": 2**31 - 1, "grace_epochs": 1_000,
          "max_concurrent": 10_000, "folds": 100, "cpus_per_trial": 1_024, "gpus_per_trial": 64,
          "time_budget_s": 30 * 86_400}
# Training keys the sweep owns: set by flags, never by `fixed`.
RESERVED = ("arch", "seed", "epochs", "device")


@dataclass(frozen=True)
class TuneConfig:
    """How to run one sweep. The search space itself is data in `cropray.tune.spaces`."""

    regime: str = "auto"  # auto (by label count) | few | mid | many: the regime table in cropray.models.policy
    samples: int = 16  # trials to run (the first is the regime's default configuration)
    epochs: int = 30  # max epochs per trial = ASHA max_t; also each trial's cosine LR schedule length
    grace_epochs: int | None = None  # epochs before ASHA may stop a trial; None = max(1, epochs // 10)
    reduction_factor: int = 3  # ASHA keeps the top 1/rf of trials at each rung
    metric: str = "cv_auc"  # objective, see METRICS (all maximised)
    search: str = "auto"  # auto (Optuna TPE when installed, else random) | optuna | random
    max_concurrent: int | None = None  # trials at once; None = cluster CPUs // cpus_per_trial
    cpus_per_trial: float = 1.0  # CPUs reserved per trial (also its torch thread count)
    gpus_per_trial: float = 0.0  # GPUs per trial; > 0 trains on CUDA
    time_budget_s: float | None = None  # stop every trial once the sweep has run this long
    seed: int = 0  # one seed for every trial: same folds, same init -> configs compared on equal terms
    folds: int | None = None  # k of the cross-validation; None = min(5, minority class count)
    include_default: bool = True  # trial 0 = the regime's default configuration (a baseline to beat)
    fixed: dict = field(default_factory=dict)  # unsearched training keys, and per-arch model kwargs
    #   under the arch's name, e.g. {"batch_size": 64, "shallow_cnn": {"channels": [16, 32, 64]}}

    def __post_init__(self) -> None:
        _choice("regime", self.regime, REGIME_CHOICES)
        _choice("search", self.search, SEARCHES)
        _choice("metric", self.metric, tuple(METRICS))
        _int("samples", self.samples, 1)
        _int("epochs", self.epochs, 1)
        _int("reduction_factor", self.reduction_factor, 2)
        _int("seed", self.seed, 0)
        if self.grace_epochs is not None:
            _int("grace_epochs", self.grace_epochs, 1)
            if self.grace_epochs > self.epochs:
                raise ConfigError(f"grace_epochs {self.grace_epochs} must be <= epochs {self.epochs}")
        if self.max_concurrent is not None:
            _int("max_concurrent", self.max_concurrent, 1)
        if self.folds is not None:
            _int("folds", self.folds, 2)
        _num("cpus_per_trial", self.cpus_per_trial, 0.0, exclusive=True)
        _num("gpus_per_trial", self.gpus_per_trial, 0.0)
        if self.time_budget_s is not None:
            _num("time_budget_s", self.time_budget_s, 0.0, exclusive=True)
        if not isinstance(self.include_default, bool):
            raise ConfigError(f"include_default must be true or false, got {self.include_default!r}")
        if not isinstance(self.fixed, dict):
            raise ConfigError(f"fixed must be a JSON object, got {type(self.fixed).__name__}")
        bad = sorted(set(self.fixed) & set(RESERVED))
        if bad:
            raise ConfigError(f"fixed: {', '.join(bad)} cannot be fixed (set by the sweep: --regime, --seed, "
                              "--epochs, --gpus-per-trial)")

    @property
    def mode(self) -> str:
        return METRICS[self.metric][0]

    @property
    def grace(self) -> int:
        return self.grace_epochs if self.grace_epochs is not None else max(1, self.epochs // 10)

    @property
    def device(self) -> str:
        return "cuda" if self.gpus_per_trial > 0 else "cpu"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TuneConfig:
        if not isinstance(d, dict):
            raise ConfigError(f"sweep config must be a JSON object, got {type(d).__name__}")
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"unknown sweep config key(s): {', '.join(unknown)}; valid: "
                              f"{', '.join(f.name for f in fields(cls))}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TuneConfig:
        return dataclasses.replace(self, **changes)


def _choice(name: str, v, valid: tuple) -> None:
    if v not in valid:
        raise ConfigError(f"{name} {v!r} is not valid; valid: {', '.join(valid)}")


def _int(name: str, v, lo: int) -> None:
    hi = LIMITS[name]
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ConfigError(f"{name} must be an integer in [{lo}, {hi:,}], got {v!r}")


def _num(name: str, v, lo: float, exclusive: bool = False) -> None:
    hi = LIMITS[name]
    ok = (isinstance(v, (int, float)) and not isinstance(v, bool) and (v > lo if exclusive else v >= lo)
          and v <= hi)
    if not ok:
        raise ConfigError(f"{name} must be a number in {'(' if exclusive else '['}{lo:g}, {hi:,}], got {v!r}")
