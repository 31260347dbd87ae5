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

    def __init__(self, regime: str, seed: int = 0, points_to_evaluate: list[dict] | None = None, skip: int = 0):
        super().__init__(metric=None, mode=None)  # sampling ignores results: nothing to optimise
        self.regime = regime
        self._rng = np.random.default_rng(seed)
        self._points = [dict(p) for p in points_to_evaluate or []]
        for _ in range(skip):  # a resumed sweep continues the sequence instead of repeating its draws
            sample(SPACES[regime], RandomTrial(self._rng))

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


def make_searcher(regime: str, tcfg: TuneConfig, max_concurrent: int, *, reruns: list[dict] | None = None,
                  done: list[tuple[dict, float | None]] = (), draws: int = 0) -> tuple[ConcurrencyLimiter, str]:
    """(searcher wrapped in a ConcurrencyLimiter, "optuna" | "random").

    A fresh sweep (reruns None) starts with the regime's default configuration when asked. A resumed one
    proposes `reruns` (the configs of trials in flight when it stopped) first; Optuna is told the
    finished trials (`done`: (config, metric value or None when it failed)), random search skips the
    `draws` it already made."""
    kind = resolve_search(tcfg.search)
    if reruns is None:
        points = [default_point(SPACES[regime])] if tcfg.include_default else []
    else:
        points = [dict(p) for p in reruns]
    if kind == "optuna":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # one log line per trial otherwise
        # A define-by-run space ignores TuneConfig's metric/mode (Tune forwards them only through a
        # non-empty param_space), so the searcher is told here, from the same TuneConfig fields.
        # A resumed sweep's TPE gets another seed: its random start-up draws must not repeat the first run's.
        searcher = OptunaSearch(space=functools.partial(optuna_space, regime=regime), metric=tcfg.metric,
                                mode=tcfg.mode, points_to_evaluate=points or None, seed=tcfg.seed + len(done))
        _warm_start(searcher, regime, done)
    else:
        searcher = RandomSearch(regime, seed=tcfg.seed, points_to_evaluate=points, skip=draws)
    return ConcurrencyLimiter(searcher, max_concurrent=max_concurrent), kind


class _Recorder:
    """The suggest_* API replaying a recorded point, noting each parameter's Optuna distribution."""

    def __init__(self, point: dict):
        import optuna

        self.point, self.dists, self._d = point, {}, optuna.distributions

    def suggest_float(self, name, low, high, *, log=False):
        self.dists[name] = self._d.FloatDistribution(low, high, log=log)
        return self.point[name]

    def suggest_int(self, name, low, high, *, log=False):
        self.dists[name] = self._d.IntDistribution(low, high, log=log)
        return self.point[name]

    def suggest_categorical(self, name, choices):
        self.dists[name] = self._d.CategoricalDistribution(choices)
        return self.point[name]


def _warm_start(searcher, regime: str, done) -> None:
    """Add the finished trials of earlier runs to the searcher's Optuna study, so TPE models them.
    (OptunaSearch.add_evaluated_point refuses define-by-run spaces; the study itself does not.)"""
    import optuna

    for config, value in done:
        rec = _Recorder(config)
        sample(SPACES[regime], rec)
        ok = value is not None and np.isfinite(value)
        searcher._ot_study.add_trial(optuna.trial.create_trial(
            params={k: config[k] for k in rec.dists}, distributions=rec.dists, value=float(value) if ok else None,
            state=optuna.trial.TrialState.COMPLETE if ok else optuna.trial.TrialState.FAIL))
