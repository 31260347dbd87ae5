"""Signals to inject: the generator's own narrowband models (`cropray.synth.components`), drawn per crop.

Same morphologies (tracks none / straight / curved / wobble / wander), time envelopes and frequency
profiles as `cropray synth`, chosen with the same `--kinds` names; rendered at unit peak amplitude so
the caller scales them by each background's noise.
"""

from __future__ import annotations

import numpy as np

from cropray.synth import components as C
from cropray.synth.config import ENVELOPES, PROFILES, TRACKS, SynthConfig
from cropray.synth.kinds import apply_kinds, parse_kinds


def signal_config(kinds: str, snr_range: tuple[float, float]) -> SynthConfig:
    """The generator config whose signal draws injection uses: every track unless `kinds` narrows it."""
    names = parse_kinds(kinds)
    if not any(n in TRACKS or n == "all" for n in names):
        names = ["all", *names]
    return apply_kinds(SynthConfig(snr_range=tuple(snr_range)), names)


def _choice(rng, weights: dict, names: tuple, size: int) -> np.ndarray:
    p = np.array([float(weights.get(k, 0.0)) for k in names])
    return rng.choice(len(names), size=size, p=p / p.sum())


def draw_signals(rng: np.random.Generator, B: int, T: int, F: int, cfg: SynthConfig) -> dict:
    """B signals at unit per-pixel peak amplitude: template (B, T, F) float32, snr (B,), track (B,) str,
    centre (B, T), width (B,), profile (B,) str, envelope (B,) str."""
    snr = C.loguniform(rng, cfg.snr_range, B)
    width = C.loguniform(rng, cfg.width_range, B)
    prof = _choice(rng, cfg.profile_weights, PROFILES, B)
    env_kind = _choice(rng, cfg.envelope_weights, ENVELOPES, B)
    track = C.pick_tracks(rng.random(B), cfg.drifting_fraction, cfg.track_weights, TRACKS)
    sign = np.where(rng.random(B) < 0.5, -1, 1)
    drift = np.where(track != TRACKS.index("none"), sign * rng.uniform(*cfg.drift_range, B), 0.0)
    offsets = C.track_offsets(rng, track, drift, T, TRACKS, cfg.drift_range[1])  # (B, T)
    centre = C.place_tracks(rng.random(B), offsets, F, cfg.min_track_fraction)[:, None] + offsets
    env = C.envelopes(rng, env_kind, T)  # (B, T) mean 1
    tpl = C.narrowband(np.ones(B), None, None, width, prof, env, F, centre=centre)
    return {"template": tpl, "snr": snr.astype(np.float32), "track": np.asarray(TRACKS)[track],
            "centre": centre.astype(np.float32), "width": width.astype(np.float32),
            "profile": np.asarray(PROFILES)[prof], "envelope": np.asarray(ENVELOPES)[env_kind]}
