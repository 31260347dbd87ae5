"""The spectrometer: windowed FFT noise in the frequency domain, the window's leakage, and the gains.

Everything works on complex voltage spectra of shape (T rows, K spectra per row, W + 2*PAD bins):
the crop's W channels plus PAD bins either side, so a window's leakage from just outside the crop
reaches its edge channels. Powers are normalised so that pure noise has mean 1 per pixel.
"""

from __future__ import annotations

import numpy as np

PAD = 4

# A window multiplies the voltages in time; in the DFT domain it convolves each spectrum with a
# short kernel (cosine-sum windows: a0, -a1/2, a2/2, ... at bin offsets 0, +-1, +-2, ...).
_BH = (0.35875, 0.48829, 0.14128, 0.01168)
WINDOWS = {
    "rect": np.array([1.0]),
    "hann": np.array([-0.25, 0.5, -0.25]),
    "blackman_harris": np.array([-_BH[3] / 2, _BH[2] / 2, -_BH[1] / 2, _BH[0], -_BH[1] / 2, _BH[2] / 2, -_BH[3] / 2]),
}


def noise_voltages(rng: np.random.Generator, T: int, K: int, W: int) -> np.ndarray:
    """Unwindowed DFT bins of real white noise: independent CN(0, 1), shape (T, K, W + 2*PAD)."""
    shape = (T, K, W + 2 * PAD)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) * np.sqrt(0.5)


def windowed_power(volts: np.ndarray, window: str, W: int) -> np.ndarray:
    """(T, K, W + 2*PAD) complex -> (T, W) power, summed over the K spectra, noise mean 1 per pixel."""
    h = WINDOWS[window]
    half = len(h) // 2
    out = np.zeros(volts.shape[:2] + (W,), dtype=np.complex128)
    for j, hj in enumerate(h):  # X_w[c] = sum_j h_j X[c - (j - half)]
        lo = PAD - (j - half)
        out += hj * volts[:, :, lo:lo + W]
    K = volts.shape[1]
    return (np.abs(out) ** 2).sum(axis=1) / (K * float((h ** 2).sum()))


def expected_power(profile: np.ndarray, window: str, W: int, coherent: bool) -> np.ndarray:
    """Expected excess power (T, W) of a signal's unit voltage spectra (T, K, W + 2*PAD), same units.

    Coherent (a tone): the window sums the complex amplitudes, then |.|^2. Incoherent (narrowband
    noise, `profile` holding each bin's variance): independent bins add their variances, h_j^2 each.
    """
    h = WINDOWS[window]
    half = len(h) // 2
    K = profile.shape[1]
    norm = K * float((h ** 2).sum())
    if coherent:
        out = np.zeros(profile.shape[:2] + (W,), dtype=np.complex128)
        for j, hj in enumerate(h):
            lo = PAD - (j - half)
            out += hj * profile[:, :, lo:lo + W]
        return (np.abs(out) ** 2).sum(axis=1) / norm
    out = np.zeros(profile.shape[:2] + (W,))
    for j, hj in enumerate(h):
        lo = PAD - (j - half)
        out += hj ** 2 * profile[:, :, lo:lo + W]
    return out.sum(axis=1) / norm


def noise_sigma(K: int) -> float:
    """Per-pixel std of the normalised noise power: a sum of K unit-mean exponentials / K."""
    return 1.0 / np.sqrt(K)


def bandpass(rng: np.random.Generator, W: int) -> np.ndarray:
    """(W,) gain: polyphase scalloping (coarse-channel edges, maybe inside the crop), ripple, slope."""
    c = np.arange(W, dtype=np.float64)
    coarse = rng.choice([64, 128, 256, 512])  # fine channels per coarse channel
    u = ((c + rng.uniform(0, coarse)) % coarse) / coarse
    g = 1.0 - rng.uniform(0.0, 0.6) * (2 * u - 1) ** 4  # flat centre, roll-off at the coarse edges
    for _ in range(rng.integers(0, 3)):
        g *= 1.0 + rng.uniform(0.0, 0.05) * np.sin(2 * np.pi * c / rng.uniform(4, 40) + rng.uniform(0, 2 * np.pi))
    return g * (1.0 + rng.uniform(-0.4, 0.4) * (c - W / 2) / W)


def gain_drift(rng: np.random.Generator, T: int) -> np.ndarray:
    """(T,) slow multiplicative gain drift along time, with a small gain step in 10% of crops."""
    walk = np.cumsum(rng.standard_normal(T))
    walk -= walk.mean()
    walk /= max(np.abs(walk).max(), 1e-9)
    g = np.exp(rng.uniform(0.0, 0.15) * walk)
    if rng.random() < 0.1:
        g[rng.integers(1, T):] *= 1.0 + rng.choice([-1, 1]) * rng.uniform(0.02, 0.10)
    return g
