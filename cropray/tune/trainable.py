"""The Tune trainable: a plain function over library code (`cross_validate`), one trial = one config.

Data arrives through `tune.with_parameters` (put in the object store once, shared by every trial);
the k folds train in lockstep and the cross-validated metrics are reported after every epoch: ASHA
stops poor trials on the pooled inner-validation ROC-AUC (`inner_val_auc`), the trials are ranked at
the end on the objective (the held-out `cv_auc` by default). One last report (`finished: True`) carries the out-of-fold ROC-AUC
with its bootstrap interval; a trial without it was stopped early (by ASHA or the time budget).

Resume granularity is the trial: `Tuner.restore` keeps finished, stopped and failed trials and reruns
the ones in flight from their first epoch. Every trial is seeded, so a rerun gives the same numbers;
saving k folds' optimiser state each epoch would only save the in-flight trials' partial work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cropray.errors import ConfigError
from cropray.tune.config import RESERVED, TuneConfig
from cropray.tune.oof import fingerprint, oof_record
from cropray.tune.spaces import AUG_KEYS, SPACES, Choice, Int, default_point, train_dict

N_BOOT = 200  # bootstrap resamples for each trial's interval (the final bundle's CV uses 1000)


@dataclass(frozen=True)
class TrialData:
    """The labelled crops every trial cross-validates on (one read-only copy in the object store)."""

    x: np.ndarray  # (N, 1, H, W) float32 raw power
    y: np.ndarray  # (N,) int64, 1 = signal
    # training-only archive crops (cropray.train.archive_data.ExtraCrops, built once by the driver):
    # they join every fold's training part, never a held-out fold, a threshold or a metric
    extra: Any = None


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of one sweep shares besides the data."""

    tune: TuneConfig  # the sweep's settings (folds, seed, epochs, fixed keys, resources)
    regime: str  # the regime whose space the sampled point comes from


def _arch_names() -> tuple[str, ...]:
    from cropray.models import list_models  # the registry: every registered architecture

    return tuple(list_models())


def searched_keys(regime: str) -> tuple[set[str], dict[str, set[str]]]:
    """(TrainConfig keys searched anywhere in the regime's space, {arch: searched model kwargs})."""
    train_keys: set[str] = set()
    model_keys: dict[str, set[str]] = {}

    def walk(space: dict, arch: str | None) -> None:
        for name, spec in space.items():
            if name == "aug_strength":
                train_keys.update(AUG_KEYS + ("augment",))
            elif isinstance(spec, Int) and spec.model:
                model_keys.setdefault(arch, set()).add(name)
            else:
                train_keys.add(name)
            if isinstance(spec, Choice):
                for opt, sub in spec.branches.items():
                    walk(sub, opt if name == "arch" else arch)

    walk(SPACES[regime], None)
    return train_keys, model_keys


def check_fixed(tcfg: TuneConfig, regime: str) -> None:
    """`fixed` must not pin a searched key, name an unknown key or hyperparameter, or make the default
    config invalid. Hyperparameter *values* are checked when a trial builds its model (a bad one fails
    the trials of that architecture, recorded as failed)."""
    from cropray.models import hparam_names

    archs = _arch_names()
    train_keys, model_keys = searched_keys(regime)
    for key, value in tcfg.fixed.items():
        if key in archs:
            if not isinstance(value, dict):
                raise ConfigError(f"fixed[{key!r}] must be a JSON object of {key} model hyperparameters")
            unknown = sorted(set(value) - set(hparam_names(key)))
            if unknown:
                raise ConfigError(f"fixed[{key!r}]: unknown hyperparameter(s) {', '.join(unknown)}; valid: "
                                  f"{', '.join(hparam_names(key))}")
            clash = sorted(set(value) & model_keys.get(key, set()))
            if clash:
                raise ConfigError(f"fixed[{key!r}]: {', '.join(clash)} is searched in the {regime!r} space")
        elif key == "model_kwargs":
            raise ConfigError("fixed: put model hyperparameters under the architecture's name, e.g. "
                              '{"shallow_cnn": {"channels": [16, 32, 64]}}')
        elif key in train_keys:
            raise ConfigError(f"fixed: {key!r} is searched in the {regime!r} space; remove it from fixed")
    build_train_config(default_point(SPACES[regime]), regime, tcfg)  # ConfigError on a bad key/value


def build_train_config(params: dict, regime: str, tcfg: TuneConfig):
    """A trial's sampled point + the sweep's fixed settings -> a validated TrainConfig."""
    from cropray.train.config import TrainConfig

    d = train_dict(SPACES[regime], params)
    archs = _arch_names()
    fixed = {k: v for k, v in tcfg.fixed.items() if k not in archs and k not in RESERVED}
    model_kwargs = {**tcfg.fixed.get(d["arch"], {}), **d.pop("model_kwargs")}
    return TrainConfig.from_dict({**fixed, **d, "model_kwargs": model_kwargs, "seed": tcfg.seed,
                                  "epochs": tcfg.epochs, "device": tcfg.device})


def epoch_row(m: dict[str, Any]) -> dict[str, Any]:
    """What a trial reports per epoch: a few floats (the driver keeps every trial's last result)."""
    nan = float("nan")
    cv, std = m.get("cv_auc", nan), m.get("cv_auc_std", nan)
    val, inner = m.get("val_auc"), m.get("inner_val_auc")
    # inner_val_auc: what ASHA stops on (cropray.tune.scheduler); NaN without inner validation splits
    # (ASHA then lets the trial pass that rung)
    return {"epoch": int(m.get("epoch", 0)), "cv_auc": cv, "cv_auc_std": std, "cv_auc_lcb": cv - std,
            "val_auc": nan if val is None else float(val), "inner_val_auc": nan if inner is None else float(inner),
            "train_loss": float(m.get("train_loss", nan)), "finished": False}


def train_trial(config: dict, *, data: TrialData, setup: TrialSetup) -> None:
    """One trial: cross-validate the sampled config, reporting the CV metric after every epoch.

    config: the sampled point (flat branch-path names); data, setup: shared by every trial."""
    import torch
    from ray import tune

    from cropray.train import cross_validate

    tcfg = setup.tune
    # The trial holds `cpus_per_trial` CPUs; more torch threads would contend with the next trial.
    torch.set_num_threads(max(1, int(tcfg.cpus_per_trial)))
    cfg = build_train_config(config, setup.regime, tcfg)
    res = cross_validate(cfg, data.x, data.y, k=tcfg.folds, progress=False, n_boot=N_BOOT, extra=data.extra,
                         on_epoch=lambda epoch, m: tune.report(epoch_row(m)))
    roc = res.metrics["roc_auc"]
    last = epoch_row(res.history[-1]) if res.history else epoch_row({})
    # "oof": the CV work itself (N scores, folds, best epochs, threshold; cropray.tune.oof), so the
    # retrain of the winner refits only instead of cross-validating it again
    tune.report({**last, "finished": True, "oof_auc": roc["value"], "oof_auc_lo": roc["lo"],
                 "oof_auc_hi": roc["hi"], "best_epoch": float(np.median(res.best_epochs)),
                 "oof": oof_record(res, fingerprint(data.x, data.y), res.cfg.seed)})
