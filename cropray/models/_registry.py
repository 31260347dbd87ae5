"""One registry, one constructor: every architecture is reachable by name through `build_model`.

Adding a model is one class decorated with `@register_model("name")`; the tests iterate `list_models()`
so they pick it up without edits. A model's constructor takes keyword-only hyperparameters; those names
are the only ones `build_model` accepts, so a typo in a `--config` JSON fails loudly.
"""

from __future__ import annotations

import inspect

from torch import nn

from cropray.errors import ConfigError

# name -> model class (an nn.Module whose keyword-only constructor arguments are its hparams)
MODELS: dict[str, type[nn.Module]] = {}

# SPEC 1 design card: label-count regimes -> architecture.
MIN_LABELS = 25
REGIMES = ((25, 99, "siamese"), (100, 499, "shallow_cnn"), (500, None, "deep_cnn"))


def register_model(name: str):
    """Class decorator: add the model class to `MODELS` under `name` and set its `arch_name`."""

    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        if name in MODELS:
            raise ValueError(f"model {name!r} registered twice")
        cls.arch_name = name
        MODELS[name] = cls
        return cls

    return deco


def list_models() -> list[str]:
    """Registered architecture names, sorted."""
    return sorted(MODELS)


def hparam_names(name: str) -> list[str]:
    """The hyperparameters `build_model(name, ...)` accepts (the constructor's keyword arguments)."""
    cls = _lookup(name)
    sig = inspect.signature(cls.__init__)
    return [p.name for p in sig.parameters.values() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
            and p.name != "self"]


def build_model(name: str, **hparams) -> nn.Module:
    """Build a registered model by name. Unknown names/hparams -> ConfigError listing the valid ones."""
    valid = hparam_names(name)
    unknown = sorted(set(hparams) - set(valid))
    if unknown:
        raise ConfigError(f"unknown hyperparameter(s) {', '.join(unknown)} for model {name!r}; "
                          f"valid: {', '.join(valid)}")
    return MODELS[name](**hparams)


def select_arch(n_labels: int) -> str:
    """`--arch auto`: siamese for 25-99 labels, shallow_cnn for 100-499, deep_cnn for 500+ (SPEC 1)."""
    n = int(n_labels)
    if n < MIN_LABELS:
        raise ConfigError(f"{n} labelled crops found; training needs >= {MIN_LABELS} "
                          "(label more crops, or score with the label-free 'dedoppler' baseline)")
    for lo, hi, arch in REGIMES:
        if n >= lo and (hi is None or n <= hi):
            return arch
    raise AssertionError("unreachable: regimes cover every n >= MIN_LABELS")


def _lookup(name: str) -> type[nn.Module]:
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; valid: {', '.join(list_models())}")
    return MODELS[name]
