"""Realistic synthetic spectrogram crops (time x frequency raw power) for demos, tests and benchmarks."""

from cropray._lazy import lazy_exports

_EXPORTS = {
    "synth_archive": "cropray.synth.archive",
    "ENVELOPES": "cropray.synth.config",
    "NEGATIVE_KINDS": "cropray.synth.config",
    "PROFILES": "cropray.synth.config",
    "SynthConfig": "cropray.synth.config",
    "BLOCK": "cropray.synth.generator",
    "SynthBatch": "cropray.synth.generator",
    "generate": "cropray.synth.generator",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)  # importing the package imports none of them
