"""Hyperparameter sweeps per label-count regime on Ray Tune (SPEC 6).

`TuneConfig` (torch- and Ray-free) says how to sweep; `SPACES` holds the search spaces as data;
`run_sweep` (in `cropray.tune.sweep`, imports Ray) runs one and writes its outputs.
"""

from cropray.tune.config import METRICS, TuneConfig
from cropray.tune.spaces import REGIME_BOUNDS, SPACES, choose_regime, default_point

__all__ = ["METRICS", "REGIME_BOUNDS", "SPACES", "TuneConfig", "choose_regime", "default_point", "run_sweep"]


def __getattr__(name: str):
    if name == "run_sweep":  # lazy: importing the package must not import Ray
        from cropray.tune.sweep import run_sweep

        return run_sweep
    raise AttributeError(name)
