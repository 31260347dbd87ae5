"""Realistic synthetic spectrogram crops (time x frequency raw power) for demos, tests and benchmarks."""

from cropray.synth.archive import synth_archive
from cropray.synth.config import ENVELOPES, NEGATIVE_KINDS, PROFILES, SynthConfig
from cropray.synth.generator import BLOCK, SynthBatch, generate

__all__ = ["BLOCK", "ENVELOPES", "NEGATIVE_KINDS", "PROFILES", "SynthBatch", "SynthConfig", "generate", "synth_archive"]
