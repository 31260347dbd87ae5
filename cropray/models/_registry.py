"""One registry, one constructor: every architecture is reachable by name through `build_model`.

What an architecture declares is its `ArchSpec` (policy.py, torch-free); this module binds a spec to
its torch class. A built-in class is decorated with `@register_model("name")` (its spec is in
policy.py); any other with `@register_model(ArchSpec(...))`, which registers the spec too, so a new
model is one class and the CLI, TrainConfig, sweeps, bench, bundles and tests pick it up. A model's
constructor takes keyword-only hyperparameters; those names are the only ones `build_model` accepts,
so a typo in a `--config` JSON fails loudly.
"""

from __future__ import annotations

import importlib
import inspect

from torch import nn

from cropray.errors import ConfigError
from cropray.models import policy
from cropray.models.policy import ArchSpec, list_models

__all__ = ["MODELS", "build_model", "hparam_names", "list_models", "model_class", "register_model",
           "unregister_model"]

# name -> model class (a CropModel whose keyword-only constructor arguments are its hparams); filled as
# each architecture's module is imported (`model_class` imports it on demand)
MODELS: dict[str, type[nn.Module]] = {}


def register_model(spec: str | ArchSpec):
    """Class decorator: bind the spec (a built-in's name, or a new ArchSpec, registered here) to the
    class as `cls.spec` / `cls.arch_name` and add the class to `MODELS`."""

    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        name = spec if isinstance(spec, str) else spec.name
        if name in MODELS:
            raise ConfigError(f"model {name!r} registered twice")
        s = policy.arch_spec(spec) if isinstance(spec, str) else policy.register_spec(spec)
        cls.arch_name = name
        cls.spec = s
        MODELS[name] = cls
        return cls

    return deco


def unregister_model(name: str) -> None:
    """Remove a model registered at run time (e.g. by a test); built-ins stay."""
    policy.unregister_spec(name)
    MODELS.pop(name, None)


def model_class(name: str) -> type[nn.Module]:
    """The class of `name` (importing its module on first use); ConfigError listing valid names."""
    spec = policy.arch_spec(name)
    if name not in MODELS and spec.module:
        importlib.import_module(spec.module)
    if name not in MODELS:
        raise ConfigError(f"model {name!r} has a spec but no registered class")
    return MODELS[name]


def hparam_names(name: str) -> list[str]:
    """The hyperparameters `build_model(name, ...)` accepts (the constructor's keyword arguments)."""
    sig = inspect.signature(model_class(name).__init__)
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
