"""Hyperparameter sweeps per label-count regime on Ray Tune.

`TuneConfig` (torch- and Ray-free) says how to sweep; `SPACES` holds the search spaces as data;
`run_sweep` (in `cropray.tune.sweep`, imports Ray) runs one and writes its outputs.
"""

from cropray._lazy import lazy_exports

_EXPORTS = {
    "METRICS": "cropray.tune.config",
    "TuneConfig": "cropray.tune.config",
    "REGIME_BOUNDS": "cropray.tune.spaces",
    "SPACES": "cropray.tune.spaces",
    "choose_regime": "cropray.tune.spaces",
    "default_point": "cropray.tune.spaces",
    "run_sweep": "cropray.tune.sweep",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)  # importing the package must not import Ray
