"""Interference kinds cropray's generator does not make, as unit voltage components (see signals.py).

Saturation is the exception: it acts on the final power crop (`saturate`), after the gains.
"""

from __future__ import annotations

import numpy as np

from research.outside_sim import signals as S

# How often each kind is drawn when a crop carries RFI.
KINDS = {"comb": 0.25, "hopping": 0.25, "saturation": 0.20, "radar": 0.15, "dc_spike": 0.15}


def _bursts(rng: np.random.Generator, T: int) -> np.ndarray:
    """(T,) on/off in blocks: an appliance switching, on 30-100% of the rows."""
    on = np.zeros(T)
    while on.mean() < rng.uniform(0.3, 1.0):
        start, n = int(rng.integers(0, T)), int(rng.integers(4, T // 2 + 1))
        on[start:start + n] = 1.0
    return on


def comb(rng: np.random.Generator, T: int, K: int, W: int, window: str):
    """Harmonics of a switching supply: >= 4 stationary teeth at a regular spacing, switched together."""
    spacing = rng.uniform(3.0, 12.0)
    first = rng.uniform(0, spacing)
    env = _bursts(rng, T)
    volts, expected = 0, 0
    for c in np.arange(first, W, spacing):
        f = np.full((T, K), c)
        v, e = S.tone(rng, f, env * rng.uniform(0.5, 1.5), window, W)
        volts, expected = volts + v, expected + e
    return volts, expected


def hopping(rng: np.random.Generator, T: int, K: int, W: int, window: str):
    """A frequency-hopping radio: 3-12 bursts of 1-3 rows, each 1-4 channels wide at a new channel."""
    volts, expected = 0, 0
    for _ in range(int(rng.integers(3, 13))):
        env = np.zeros(T)
        start = int(rng.integers(0, T))
        env[start:start + int(rng.integers(1, 4))] = 1.0
        f = np.full((T, K), rng.uniform(0, W))
        v, e = S.gaussian(rng, f, env, rng.uniform(0.5, 2.0), window, W)
        volts, expected = volts + v, expected + e
    return volts, expected


def dc_spike(rng: np.random.Generator, T: int, K: int, W: int, window: str):
    """The residue of the sampler's DC offset after the usual DC-bin blanking: a steady carrier on the
    centre channel of a crop centred on it (its SNR is drawn from `DC_SNR`, not the RFI range)."""
    return S.tone(rng, np.full((T, K), W / 2), np.ones(T), window, W)


def radar(rng: np.random.Generator, T: int, K: int, W: int, window: str):
    """A radar chirp sweeping 3-15 channels per row, wrapping round its band, pulsed."""
    rate = rng.choice([-1, 1]) * rng.uniform(3.0, 15.0)
    f = (rng.uniform(0, W) + rate * S.times(T, K)) % W
    return S.tone(rng, f, S.envelope(rng, "pulsed", T), window, W)


DC_SNR = (4.0, 20.0)
VOLTAGE_KINDS = {"comb": comb, "hopping": hopping, "dc_spike": dc_spike, "radar": radar}


def saturate(rng: np.random.Generator, crop: np.ndarray, floor: float) -> np.ndarray:
    """ADC saturation: 1-6 rows of a strong broadband burst flatten at the clip level, and the whole
    crop is clipped there. `floor` is the crop's noise level (power units after the gains)."""
    T = crop.shape[0]
    clip = floor * rng.uniform(3.0, 30.0)
    out = np.minimum(crop, clip)
    rows = rng.choice(T, size=int(rng.integers(1, 7)), replace=False)
    out[rows] = clip * (1.0 - np.abs(rng.normal(0, 0.01, (len(rows), crop.shape[1]))))
    return out
