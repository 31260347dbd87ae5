"""Searchers: Optuna TPE over the define-by-run spaces when Optuna is installed, random otherwise.

Both draw through `spaces.sample`, so the conditional structure (a parameter exists only in its
architecture's branch) is the same whichever searcher runs. Both start with the regime's default
configuration when asked, so every sweep measures the baseline it has to beat.
"""

from __future__ import annotations

import functools
import importlib.util
import json

import numpy as np
from ray.tune.search import ConcurrencyLimiter, Searcher

from cropray.errors import ConfigError
from cropray.tune.config import TuneConfig
from cropray.tune.spaces import SPACES, RandomTrial, default_point, optuna_space, sample


def resolve_search(kind: str) -> str:
    """auto -> optuna when importable, else random. Asking for optuna without it -> ConfigError."""
    have = importlib.util.find_spec("optuna") is not None
    if kind == "auto":
        return "optuna" if have else "random"
    if kind == "optuna" and not have:
        raise ConfigError("--search optuna: optuna is not installed (pip install 'cropray[tune]'), "
                          "or use --search random")
    return kind


class RandomSearch(Searcher):
    """Uniform random search over a regime's space: draws the architecture, then only its parameters.

    Its state (the generator's position and the points still to evaluate) is saved as JSON with the
    experiment, so a resumed sweep continues the same sequence instead of repeating draws."""

    def __init__(self, regime: str, seed: int = 0, points_to_evaluate: list[dict] | None = None):
        super().__init__(metric=None, mode=None)  # sampling ignores results: nothing to optimise
        self.regime = regime
        self._rng = np.random.default_rng(seed)
        self._points = [dict(p) for p in points_to_evaluate or []]

    def suggest(self, trial_id: str) -> dict:
        if self._points:
            return self._points.pop(0)
        return sample(SPACES[self.regime], RandomTrial(self._rng))

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass

    def get_state(self) -> dict:
        return {"regime": self.regime, "rng": self._rng.bit_generator.state, "points": self._points}

    def set_state(self, state: dict) -> None:
        self.regime = state["regime"]
        self._rng = np.random.default_rng()
        self._rng.bit_generator.state = state["rng"]
        self._points = [dict(p) for p in state["points"]]

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "w") as f:
            json.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path) as f:
            self.set_state(json.load(f))


def make_searcher(regime: str, tcfg: TuneConfig, max_concurrent: int) -> tuple[ConcurrencyLimiter, str]:
    """(searcher wrapped in a ConcurrencyLimiter, "optuna" | "random")."""
    kind = resolve_search(tcfg.search)
    points = [default_point(SPACES[regime])] if tcfg.include_default else []
    if kind == "optuna":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # one log line per trial otherwise
        # A define-by-run space ignores TuneConfig's metric/mode (Tune forwards them only through a
        # non-empty param_space), so the searcher is told here, from the same TuneConfig fields.
        searcher = OptunaSearch(space=functools.partial(optuna_space, regime=regime), metric=tcfg.metric,
                                mode=tcfg.mode, points_to_evaluate=points or None, seed=tcfg.seed)
    else:
        searcher = RandomSearch(regime, seed=tcfg.seed, points_to_evaluate=points)
    return ConcurrencyLimiter(searcher, max_concurrent=max_concurrent), kind
