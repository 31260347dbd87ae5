"""One crop at a time: noise, an optional signal scaled to its SNR, optional RFI, gains, level."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from research.outside_sim import rfi as R
from research.outside_sim import signals as S
from research.outside_sim import spectrometer as SP

T, W = 64, 64
ACCUMULATIONS = (1, 2, 3, 4, 6, 8)
ENVELOPES = {"constant": 0.40, "pulsed": 0.20, "scintillating": 0.25, "intermittent": 0.15}
RFI_SNR = (8.0, 150.0)  # matched-filter SNR of an RFI component, log-uniform
RFI_SHARE = {0: 0.70, 1: 0.35}  # chance that a crop of that label carries one RFI kind


@dataclass(frozen=True)
class CropRecipe:
    """What one set draws: the SNR range (log-uniform) and the track kinds with their weights."""

    snr_range: tuple[float, float]
    tracks: dict[str, float]


@dataclass
class Crop:
    power: np.ndarray  # (T, W) float32 spectrometer power
    label: int
    snr: float  # NaN for negatives
    track: str  # "" for negatives
    rfi: str  # "" if none


def _pick(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = list(weights)
    p = np.array([weights[n] for n in names], dtype=float)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _loguniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(np.exp(rng.uniform(np.log(lo_hi[0]), np.log(lo_hi[1]))))


def _scaled(volts, expected, snr: float, sigma: float):
    """Voltages scaled so the component's matched-filter SNR is `snr`."""
    a = snr / max(S.matched_snr(expected, sigma), 1e-12)
    return np.sqrt(a) * volts


def make_crop(rng: np.random.Generator, label: int, recipe: CropRecipe) -> Crop:
    K = int(rng.choice(ACCUMULATIONS))
    window = str(rng.choice(list(SP.WINDOWS)))
    sigma = SP.noise_sigma(K)
    volts = SP.noise_voltages(rng, T, K, W)
    snr, track = float("nan"), ""
    if label:
        track = _pick(rng, recipe.tracks)
        f = S.track(rng, track, T, K, W)
        env = S.envelope(rng, _pick(rng, ENVELOPES), T)
        if rng.random() < 0.55:
            v, e = S.tone(rng, f, env, window, W)
        else:
            v, e = S.gaussian(rng, f, env, rng.uniform(0.3, 1.5), window, W)
        snr = _loguniform(rng, recipe.snr_range)
        volts = volts + _scaled(v, e, snr, sigma)
    kind = _pick(rng, R.KINDS) if rng.random() < RFI_SHARE[label] else ""
    if kind in R.VOLTAGE_KINDS:
        v, e = R.VOLTAGE_KINDS[kind](rng, T, K, W, window)
        volts = volts + _scaled(v, e, _loguniform(rng, R.DC_SNR if kind == "dc_spike" else RFI_SNR), sigma)
    power = SP.windowed_power(volts, window, W)
    level = 10.0 ** rng.uniform(-1.0, 5.0)  # six decades of system gain
    power = power * SP.gain_drift(rng, T)[:, None] * SP.bandpass(rng, W)[None, :] * level
    if kind == "saturation":
        power = R.saturate(rng, power, level)
    return Crop(power.astype(np.float32), int(label), snr, track, kind)
