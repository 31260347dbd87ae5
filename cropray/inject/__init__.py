"""Learning from the archive: background crops sampled from the user's own unlabelled archive,
synthetic narrowband signals injected into them in the archive's raw units, and the guards that keep
signals already in the archive out of the negatives."""

from cropray._lazy import lazy_exports

_EXPORTS = {
    "InjectConfig": "cropray.inject.config",
    "Backgrounds": "cropray.inject.sample",
    "sample_backgrounds": "cropray.inject.sample",
    "noise_sigma": "cropray.inject.noise",
    "draw_signals": "cropray.inject.signals",
    "InjectedSet": "cropray.inject.build",
    "build_injected": "cropray.inject.build",
    "inject_from_archive": "cropray.inject.build",
    "track_statistic": "cropray.inject.exclude",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)  # importing the package imports none of them
