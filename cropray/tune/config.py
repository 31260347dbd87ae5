"""Sweep configuration: one small typed dataclass, free of torch and Ray, validated on construction.

`TuneConfig.to_dict()` is written beside every sweep (`tune_config.json`) and read back by `--resume`,
so a resumed sweep runs with exactly the settings it started with.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from cropray.errors import ConfigError
from cropray.models.policy import REGIMES
from cropray.validate import boolean, choice, integer, mapping, number, validate

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

    regime: str = choice("auto", REGIME_CHOICES)  # auto (by label count) | few | mid | many: the regime table
    #   in cropray.models.policy
    samples: int = integer(16, 1, LIMITS["samples"])  # trials to run (the first is the regime's default
    #   configuration)
    epochs: int = integer(30, 1, LIMITS["epochs"])  # max epochs per trial = ASHA max_t; also each trial's
    #   cosine LR schedule length
    grace_epochs: int | None = integer(None, 1, LIMITS["grace_epochs"], nullable=True)  # epochs before ASHA
    #   may stop a trial; None = max(1, epochs // 10)
    reduction_factor: int = integer(3, 2, LIMITS["reduction_factor"])  # ASHA keeps the top 1/rf of trials at
    #   each rung
    metric: str = choice("cv_auc", tuple(METRICS))  # objective, see METRICS (all maximised)
    search: str = choice("auto", SEARCHES)  # auto (Optuna TPE when installed, else random) | optuna | random
    max_concurrent: int | None = integer(None, 1, LIMITS["max_concurrent"], nullable=True)  # trials at once;
    #   None = cluster CPUs // cpus_per_trial
    cpus_per_trial: float = number(1.0, 0.0, LIMITS["cpus_per_trial"], lo_open=True)  # CPUs reserved per
    #   trial (also its torch thread count)
    gpus_per_trial: float = number(0.0, 0.0, LIMITS["gpus_per_trial"])  # GPUs per trial; > 0 trains on CUDA
    time_budget_s: float | None = number(None, 0.0, LIMITS["time_budget_s"], lo_open=True, nullable=True)  # stop every trial once the sweep has run this long
    seed: int = integer(0, 0, LIMITS["seed"])  # one seed for every trial: same folds, same init -> configs
    #   compared on equal terms
    folds: int | None = integer(None, 2, LIMITS["folds"], nullable=True)  # k of the cross-validation; None =
    #   min(5, minority class count)
    include_default: bool = boolean(True)  # trial 0 = the regime's default configuration (a baseline to beat)
    fixed: dict = mapping(default_factory=dict)  # unsearched training keys, and per-arch model kwargs
    #   under the arch's name, e.g. {"batch_size": 64, "shallow_cnn": {"channels": [16, 32, 64]}}

    def __post_init__(self) -> None:
        validate(self, "sweep config")  # each field's rule (cropray.validate)
        if self.grace_epochs is not None and self.grace_epochs > self.epochs:
            raise ConfigError(f"sweep config grace_epochs {self.grace_epochs} must be <= epochs {self.epochs}",
                              field="grace_epochs")
        bad = sorted(set(self.fixed) & set(RESERVED))
        if bad:
            raise ConfigError(f"sweep config fixed: {', '.join(bad)} cannot be fixed (set by the sweep's own "
                              "regime, seed, epochs and gpus_per_trial)", field="fixed")

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

