"""Narrowband emitters as unit voltage spectra: tracks, envelopes and spectral profiles.

A component is (volts, expected): `volts` (T, K, W + 2*PAD) complex amplitudes of one realisation at
unit strength, `expected` (T, W) its expected excess power after the window (spectrometer units).
Scaling the voltages by sqrt(a) scales the power by a.
"""

from __future__ import annotations

import numpy as np

from research.outside_sim.spectrometer import PAD, expected_power


def times(T: int, K: int) -> np.ndarray:
    """(T, K) centre time of each of a row's K spectra, in rows: drift acts within a row too."""
    return np.arange(T)[:, None] + (np.arange(K)[None, :] + 0.5) / K


def _place(rng: np.random.Generator, shape: np.ndarray, W: int) -> np.ndarray:
    """Offset a track shape (T, K) so it lies inside channels [3, W - 3]; squeeze it if it cannot."""
    lo, hi = shape.min(), shape.max()
    room = (W - 6) - (hi - lo)
    if room < 0:
        shape = (shape - lo) * (W - 6) / (hi - lo)
        lo, room = 0.0, 0.0
    return shape - lo + 3 + rng.uniform(0, room)


def _drift_rate(rng: np.random.Generator, T: int) -> float:
    """channels/row: zero (30%), sub-channel over the crop (25%), else up to 1 channel/row."""
    u = rng.random()
    if u < 0.30:
        return 0.0
    sign = rng.choice([-1.0, 1.0])
    if u < 0.55:
        return sign * rng.uniform(0.1, 1.0) / T
    return sign * np.exp(rng.uniform(np.log(1.0 / T), np.log(1.0)))


def track(rng: np.random.Generator, kind: str, T: int, K: int, W: int) -> np.ndarray:
    """(T, K) channel of the emitter at each spectrum; kinds straight|chirp|curved|wander|wobble."""
    t = times(T, K)
    rate = _drift_rate(rng, T)
    if kind == "straight":
        shape = rate * t
    elif kind in ("chirp", "curved"):  # drift rate changing linearly: a parabola deviating `dev` channels
        dev = rng.uniform(0.5, 2.0) if kind == "chirp" else rng.uniform(2.0, 10.0)
        shape = rate * t + rng.choice([-1, 1]) * dev * (2 * t / T - 1) ** 2
    elif kind == "wander":  # a smoothed random walk of the frequency, 1-6 channels peak to peak
        steps = np.convolve(rng.standard_normal(T * K + 40), np.ones(8) / 8, mode="same")[20:20 + T * K]
        walk = np.cumsum(steps).reshape(T, K)
        walk -= walk.min()
        shape = rate * t + walk * rng.uniform(1.0, 6.0) / max(walk.max(), 1e-9)
    elif kind == "wobble":
        shape = rate * t + rng.uniform(1.0, 4.0) * np.sin(2 * np.pi * t / rng.uniform(16, 128) + rng.uniform(0, 6.3))
    else:
        raise ValueError(f"unknown track kind {kind!r}")
    return _place(rng, shape, W)


def envelope(rng: np.random.Generator, kind: str, T: int) -> np.ndarray:
    """(T,) power envelope, mean 1 where on; kinds constant|pulsed|scintillating|intermittent."""
    if kind == "constant":
        return np.ones(T)
    if kind == "pulsed":
        period = rng.uniform(3, 16)
        phase = (np.arange(T) / period + rng.random()) % 1.0
        return (phase < rng.uniform(0.2, 0.6)).astype(float)
    if kind == "scintillating":  # exponential intensities with a 2-12 row correlation time
        L = int(rng.integers(2, 13))
        z = rng.standard_normal(T + 2 * L) + 1j * rng.standard_normal(T + 2 * L)
        z = np.convolve(z, np.ones(L), mode="same")[L:L + T]
        p = np.abs(z) ** 2
        return p / p.mean()
    if kind == "intermittent":
        n_on = int(rng.integers(int(0.3 * T), int(0.8 * T) + 1))
        start = int(rng.integers(0, T - n_on + 1))
        e = np.zeros(T)
        e[start:start + n_on] = 1.0
        return e
    raise ValueError(f"unknown envelope kind {kind!r}")


def _bins(W: int) -> np.ndarray:
    return np.arange(-PAD, W + PAD, dtype=np.float64)


def tone(rng: np.random.Generator, f: np.ndarray, env: np.ndarray, window: str, W: int):
    """A coherent carrier at channels f (T, K): DFT bins e^{i pi x} sinc(x), x = f - bin (long FFT)."""
    x = f[:, :, None] - _bins(W)[None, None, :]
    phase = np.exp(2j * np.pi * rng.random(f.shape))[:, :, None]
    volts = np.sqrt(env)[:, None, None] * phase * np.exp(1j * np.pi * x) * np.sinc(x)
    return volts, expected_power(volts, window, W, coherent=True)


def gaussian(rng: np.random.Generator, f: np.ndarray, env: np.ndarray, width: float, window: str, W: int):
    """Narrowband noise with a Gaussian spectral profile of std `width` channels, unit total power."""
    x = f[:, :, None] - _bins(W)[None, None, :]
    var = np.sqrt(env)[:, None, None] ** 2 * np.exp(-0.5 * (x / width) ** 2) / (np.sqrt(2 * np.pi) * width)
    z = (rng.standard_normal(var.shape) + 1j * rng.standard_normal(var.shape)) * np.sqrt(0.5)
    return np.sqrt(var) * z, expected_power(var, window, W, coherent=False)


def matched_snr(expected: np.ndarray, sigma: float) -> float:
    """sqrt(sum over pixels of (E[excess] / sigma)^2): the SNR of a matched filter on white noise."""
    return float(np.sqrt(((expected / sigma) ** 2).sum()))
