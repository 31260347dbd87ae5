"""Search spaces per label-count regime, as data, and the one walk that samples them.

A regime's space is derived from the registry (cropray.models.policy): its architectures are the
regime's default plus every ArchSpec declaring the regime, each with the sub-space its spec declares
for it (`ArchSpec.search[regime]`); what the regime searches besides the architecture is `_EXTRA` here.

A space is a tree: a `Choice` may carry a sub-space per option (`branches`), whose parameters exist only
when that option is drawn. Sampled names carry their branch path (`siamese.embedding_dim`,
`deep_cnn.focal.focal_gamma`), so Optuna's define-by-run TPE models each branch's parameter on its
own and no parameter is ever drawn for an architecture that lacks it. The same `sample` walk drives
both samplers: an Optuna trial, or `RandomTrial` (numpy) when Optuna is absent.

Leaf names are TrainConfig keys, except `model=True` leaves (build_model hyperparameters, e.g. deep_cnn
`width`) and `aug_strength` (one knob scaling every augmentation's magnitude; 1 = the training
defaults, 0 = augmentation off). Every leaf's `default` is the library default, so the default point of
a regime is exactly what `cropray train` does with `--arch auto` (tests check this).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from cropray.errors import ConfigError
from cropray.models import policy
from cropray.models.policy import Choice, Float, Int

__all__ = ["AUG_KEYS", "REGIME_BOUNDS", "SPACES", "Choice", "Float", "Int", "RandomTrial", "choose_regime",
           "default_point", "optuna_space", "regime_for", "sample", "scaled_augment", "space_rows", "train_dict"]


class _Spaces(Mapping):
    """regime name -> its search space, built from the registry on every lookup (so an architecture
    registered at run time is in the spaces of the regimes its spec declares):

        {"arch": Choice(the regime's architectures, its default, {arch: the arch's sub-space}), **extra}
    """

    def __getitem__(self, regime: str) -> dict:
        if regime not in _EXTRA:
            raise KeyError(regime)
        archs = policy.regime_archs(regime)
        branches = {a: dict(policy.arch_spec(a).search[regime]) for a in archs}
        return {"arch": Choice(archs, policy.regime(regime).default, branches), **_EXTRA[regime]}

    def __iter__(self):
        return iter(_EXTRA)

    def __len__(self) -> int:
        return len(_EXTRA)


_WEIGHT_DECAY = Float(1e-6, 1e-2, 1e-4, log=True)
# What each regime searches besides the architecture (whose own sub-spaces are in its ArchSpec.search):
_EXTRA: dict[str, dict] = {
    "few": {"aug_strength": Float(0.0, 2.0, 1.0)},  # 25-99 labels: augmentation carries much of the weight
    "mid": {"weight_decay": _WEIGHT_DECAY},
    "many": {"weight_decay": _WEIGHT_DECAY},
}
SPACES: Mapping[str, dict] = _Spaces()
# Label-count bounds (inclusive; None = no upper bound), from the regime table (cropray.models.policy).
REGIME_BOUNDS: dict[str, tuple[int, int | None]] = {r.name: (r.lo, r.hi) for r in policy.REGIMES}
AUG_KEYS = ("aug_freq_roll", "aug_time_shift", "aug_noise", "aug_level_decades", "aug_tilt")


def regime_for(n_labels: int) -> str | None:
    r = policy.regime_for(n_labels)
    return None if r is None else r.name


def choose_regime(requested: str, n_labels: int) -> tuple[str, str | None]:
    """(regime, warning or None). Fewer labels than any regime, or an unknown name -> ConfigError.

    A forced regime that does not match the label count is allowed with a warning: the bounds are a
    rule of thumb, and comparing a neighbouring regime's space on the same labels is a legitimate
    experiment (e.g. do the CNNs already beat the Siamese encoder at 90 labels?)."""
    natural = regime_for(n_labels)
    lo = min(b[0] for b in REGIME_BOUNDS.values())
    if natural is None:
        ranges = ", ".join(f"{r.name}: {r.label_range}" for r in policy.REGIMES)
        raise ConfigError(f"{n_labels} labelled crops: every sweep regime needs >= {lo} "
                          f"({ranges}) - label {lo - n_labels} more")
    if requested == "auto":
        return natural, None
    if requested not in SPACES:
        raise ConfigError(f"--regime {requested!r} is not valid; valid: auto, {', '.join(SPACES)}")
    if requested != natural:
        return requested, (f"--regime {requested} forced with {n_labels} labels (that count is the "
                           f"{natural!r} regime); sweeping the {requested!r} space anyway")
    return requested, None


def sample(space: dict, trial, prefix: str = "") -> dict:
    """Draw one point by walking `space` with `trial`'s suggest_* calls (Optuna's Trial API)."""
    out: dict = {}
    for name, spec in space.items():
        key = prefix + name
        if isinstance(spec, Float):
            v = trial.suggest_float(key, spec.low, spec.high, log=spec.log)
        elif isinstance(spec, Int):
            v = trial.suggest_int(key, spec.low, spec.high, log=spec.log)
        else:
            v = trial.suggest_categorical(key, list(spec.options))
        out[key] = v
        if isinstance(spec, Choice) and v in spec.branches:
            out.update(sample(spec.branches[v], trial, f"{prefix}{v}."))
    return out


def default_point(space: dict, prefix: str = "") -> dict:
    """The point of `space` made of every parameter's default (the regime's default configuration)."""
    out: dict = {}
    for name, spec in space.items():
        out[prefix + name] = spec.default
        if isinstance(spec, Choice) and spec.default in spec.branches:
            out.update(default_point(spec.branches[spec.default], f"{prefix}{spec.default}."))
    return out


def optuna_space(trial, regime: str) -> None:
    """Optuna define-by-run space (OptunaSearch captures the suggested values; nothing is returned)."""
    sample(SPACES[regime], trial)


class RandomTrial:
    """The suggest_* subset of Optuna's Trial API over a numpy Generator: uniform random search."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float:
        if log:
            return float(math.exp(self.rng.uniform(math.log(low), math.log(high))))
        return float(self.rng.uniform(low, high))

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int:
        if log:  # log-uniform over [low - 0.5, high + 0.5) then rounded, as Optuna's log ints
            v = math.exp(self.rng.uniform(math.log(low - 0.5), math.log(high + 0.5)))
            return int(min(high, max(low, round(v))))
        return int(self.rng.integers(low, high + 1))

    def suggest_categorical(self, name: str, choices: list):
        return choices[int(self.rng.integers(len(choices)))]


def train_dict(space: dict, params: dict, prefix: str = "") -> dict:
    """Sampled point -> TrainConfig keys (model hyperparameters under `model_kwargs`). A key of `params`
    outside the drawn branches is an error: it would be a parameter sampled and silently ignored."""
    d: dict = {"model_kwargs": {}}
    used = _apply(space, params, prefix, d)
    stray = sorted(set(params) - used)
    if stray:
        raise ConfigError(f"parameter(s) {', '.join(stray)} do not belong to the drawn branch")
    return d


def _apply(space: dict, params: dict, prefix: str, d: dict) -> set:
    used = set()
    for name, spec in space.items():
        key = prefix + name
        if key not in params:
            raise ConfigError(f"sampled point lacks {key!r}")
        v, used = params[key], used | {key}
        if name == "aug_strength":
            d.update(scaled_augment(v))
        elif isinstance(spec, Int) and spec.model:
            d["model_kwargs"][name] = v
        else:
            d[name] = v
        if isinstance(spec, Choice) and v in spec.branches:
            used |= _apply(spec.branches[v], params, f"{prefix}{v}.", d)
    return used


def scaled_augment(strength: float) -> dict:
    """Every augmentation magnitude = strength x its training default; strength 0 turns them off."""
    from dataclasses import fields

    from cropray.train.config import TrainConfig  # lazy: the cropray.train package imports torch

    if strength <= 0:
        return {"augment": False}
    base = {f.name: f.default for f in fields(TrainConfig) if f.name in AUG_KEYS}
    return {"augment": True, **{k: (round(v * strength) if isinstance(v, int) else float(v * strength))
                                for k, v in base.items()}}


def space_rows(regime: str) -> list[list[str]]:
    """[name, range, default] rows for --help and the README."""
    rows: list[list[str]] = []

    def walk(space: dict, prefix: str) -> None:
        for name, spec in space.items():
            if isinstance(spec, Choice):
                rows.append([prefix + name, " | ".join(spec.options), spec.default])
                for opt, sub in spec.branches.items():
                    walk(sub, f"{prefix}{opt}.")
            else:
                scale = "log " if spec.log else ""
                rows.append([prefix + name, f"{scale}[{spec.low:g}, {spec.high:g}]", f"{spec.default:g}"])

    walk(SPACES[regime], "")
    return rows
