"""The physical pieces of a synthetic crop, each vectorised over a batch of crops.

Shapes: B crops, T time rows (axis 0 of a crop), F frequency channels (axis 1). Everything is numpy,
float32 for the (B, T, F) arrays. `rng` is a `np.random.Generator`; every function draws a fixed
number of values for a given B, so a block's content depends only on its seed.
"""

from __future__ import annotations

import numpy as np


def loguniform(rng: np.random.Generator, lo_hi: tuple[float, float], size) -> np.ndarray:
    lo, hi = lo_hi
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size))


# --- positives: one narrowband signal ------------------------------------------------------------------


def narrowband(
    amplitude: np.ndarray,
    f0: np.ndarray,
    drift: np.ndarray,
    width: np.ndarray,
    profile: np.ndarray,
    envelope: np.ndarray,
    F: int,
    centre: np.ndarray | None = None,
) -> np.ndarray:
    """Render narrowband signals, deterministic given their parameters.

    amplitude (B,): peak power per pixel of the continuous profile; f0 (B,): channel of the centre at
    row 0 (continuous); drift (B,): channels per row; width (B,): FWHM (gaussian, sinc2) or full width
    (boxcar) in channels; profile (B,) int: index into PROFILES; envelope (B, T): intensity over time,
    mean 1 per crop so the time-integrated, de-drifted spectrum peaks at T * amplitude.
    centre (B, T), optional: the track's channel in every row (any morphology, see `track_offsets`);
    when given, f0 and drift are ignored. Returns (B, T, F) float32.
    """
    B, T = envelope.shape
    t = np.arange(T, dtype=np.float32)
    chan = np.arange(F, dtype=np.float32)
    if centre is None:
        centre = f0[:, None] + drift[:, None] * t  # a straight track
    centre = centre.astype(np.float32)  # (B, T)
    dist = chan[None, None, :] - centre[:, :, None]  # (B, T, F) channels from the track
    w = width.astype(np.float32)[:, None, None]
    out = np.empty((B, T, F), np.float32)
    g = profile == 0  # gaussian, FWHM = w
    out[g] = np.exp(-0.5 * (dist[g] / (w[g] / 2.3548)) ** 2)
    s = profile == 1  # sinc^2 (spectral leakage of an unwindowed FFT), FWHM = w, sidelobes kept
    out[s] = np.sinc(0.8859 * dist[s] / w[s]) ** 2
    b = profile == 2  # boxcar of full width w: the fraction of each channel it covers (anti-aliased)
    half = w[b] / 2
    out[b] = np.clip(np.minimum(dist[b] + 0.5, half) - np.maximum(dist[b] - 0.5, -half), 0.0, 1.0)
    out *= (amplitude.astype(np.float32)[:, None, None]) * envelope.astype(np.float32)[:, :, None]
    return out


def place_tracks(u: np.ndarray, offsets: np.ndarray, F: int, min_track_fraction: float,
                 margin: float = 2.0) -> np.ndarray:
    """Start channel f0 (B,) from uniforms u (B,) in [0, 1) for tracks f0 + offsets (B, T).

    The track lies inside the crop for f0 in [lo, hi]; it may leave it by (1 - min_track_fraction) of
    its frequency extent (for a straight track: it stays inside for >= that fraction of rows).
    lo + (hi - lo) * u is exactly what rng.uniform(lo, hi) computes from the same draw.
    """
    off_lo, off_hi = offsets.min(axis=1), offsets.max(axis=1)  # (B,) offsets[:, 0] == 0
    lo = margin - off_lo
    hi = F - 1 - margin - off_hi
    slack = (1 - min_track_fraction) * (off_hi - off_lo)  # channels the track may leave the crop by
    lo, hi = lo - slack, hi + slack
    mid = (lo + hi) / 2
    lo, hi = np.minimum(lo, mid), np.maximum(hi, mid)  # guard a track wider than the crop
    return lo + (hi - lo) * u


def pick_tracks(u: np.ndarray, drifting_fraction: float, weights: dict | None, names: tuple) -> np.ndarray:
    """Track morphology (B,) int, an index into `names` (TRACKS), from uniforms u (B,).

    weights None: the original two kinds, "straight" with probability drifting_fraction, else "none".
    Otherwise the inverse CDF of the weights (missing names weigh 0).
    """
    if weights is None:
        return np.where(u < drifting_fraction, names.index("straight"), names.index("none"))
    p = np.array([float(weights.get(k, 0.0)) for k in names])
    cdf = np.cumsum(p) / p.sum()
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(names) - 1)


def track_offsets(rng, track: np.ndarray, drift: np.ndarray, T: int, names: tuple, drift_max: float) -> np.ndarray:
    """Channel offset of each track from its row-0 channel, (B, T) float64, offsets[:, 0] == 0.

    track (B,) int into `names` (TRACKS); drift (B,) channels per row (0 for "none"); drift_max: the
    config's largest |drift| (a curved track's end drift stays within max(drift_max, 1)).
      none      0
      straight  drift * t                                  (constant Doppler drift)
      curved    drift changes linearly from d0 = drift to d1 over the crop: an accelerating
                transmitter, d0 t + (d1 - d0) t^2 / (2 (T - 1)); |d1 - d0| 0.3..1 channel/row, so
                the track bows 2..8 channels away from its chord
      wobble    drift / 2 * t + A (sin(2 pi t / P + phi) - sin phi): an oscillator drifting
                periodically, A 1.5..6 channels, period P 16..64 rows
      wander    drift / 4 * t + a random walk of N(0, s^2) steps, s 0.25..0.8 channels/row:
                RFI-like frequency wander
    Every draw has a size fixed by B and T, so the stream never depends on which kinds were drawn.
    """
    B = len(track)
    t = np.arange(T, dtype=np.float32)
    delta = rng.uniform(0.3, 1.0, B) * np.where(rng.random(B) < 0.5, -1, 1)
    amp = loguniform(rng, (1.5, 6.0), B)[:, None]
    period = rng.uniform(16.0, 64.0, B)[:, None]
    phase = rng.uniform(0.0, 2 * np.pi, B)[:, None]
    step_s = rng.uniform(0.25, 0.8, B)[:, None]
    steps = rng.standard_normal((B, T)) * step_s
    dmax = max(float(drift_max), 1.0)
    d1 = drift + delta
    d1 = np.where(np.abs(d1) > dmax, drift - delta, d1)  # bend the other way rather than run off
    curved = drift[:, None] * t + (d1 - drift)[:, None] * t**2 / (2 * (T - 1))
    wobble = drift[:, None] / 2 * t + amp * (np.sin(2 * np.pi * t / period + phase) - np.sin(phase))
    steps[:, 0] = 0.0
    wander = drift[:, None] / 4 * t + np.cumsum(steps, axis=1)
    straight = drift[:, None] * t  # exactly the original track's arithmetic (float32 t, float64 drift)
    choices = {"none": np.zeros((B, T)), "straight": straight, "curved": curved, "wobble": wobble, "wander": wander}
    out = np.zeros((B, T))
    for i, name in enumerate(names):
        out = np.where((track == i)[:, None], choices[name], out)
    return out


def envelopes(rng, kind: np.ndarray, T: int) -> np.ndarray:
    """Intensity over time (B, T), mean 1 per crop. kind (B,) int: index into ENVELOPES.

    constant: 1. scintillating: |complex gaussian field|^2 smoothed over a correlation time of 2..32
    rows (exponential intensity statistics, as in diffractive scintillation), partly modulated.
    pulsed: on/off with period 6..32 rows and duty cycle 0.25..0.7 (>= 1 on-row per period).
    """
    B = len(kind)
    t = np.arange(T)
    # scintillation: white complex field over 2T rows (avoids wrap-around), gaussian-smoothed via FFT
    field = rng.standard_normal((B, 2 * T)) + 1j * rng.standard_normal((B, 2 * T))
    tau = loguniform(rng, (2.0, 32.0), B)  # correlation time in rows
    nu = np.fft.fftfreq(2 * T)  # cycles per row
    field = np.fft.ifft(np.fft.fft(field, axis=1) * np.exp(-2 * (np.pi * tau[:, None] * nu) ** 2), axis=1)
    inten = np.abs(field[:, :T]) ** 2  # (B, T)
    m = rng.uniform(0.5, 1.0, B)[:, None]  # modulation index
    scint = (1 - m) + m * inten / inten.mean(axis=1, keepdims=True)
    period = rng.uniform(6.0, 32.0, B)[:, None]
    duty = rng.uniform(0.25, 0.7, B)[:, None]
    phase = rng.uniform(0.0, 1.0, B)[:, None]
    pulsed = (((t / period) + phase) % 1.0 < duty).astype(np.float64)
    env = np.where((kind == 1)[:, None], scint, np.where((kind == 2)[:, None], pulsed, 1.0))
    return env / env.mean(axis=1, keepdims=True)


# --- negatives (and interference on some positives); all scaled to a total excess energy ------------


def impulse_factors(rng, B: int, T: int, F: int) -> tuple[np.ndarray, np.ndarray]:
    """Broadband impulses: 1..3 consecutive bright rows spanning 60..100 % of the band.

    Returns rank-1 factors: time (B, T) and frequency (B, F); the impulse is their outer product.
    """
    k = rng.integers(1, 4, B)  # rows per impulse
    r0 = rng.integers(0, T - 2, B)
    rows = r0[:, None] + np.arange(3)  # (B, 3)
    amp = rng.uniform(0.5, 1.0, (B, 3)) * (np.arange(3) < k[:, None])
    tp = ((np.arange(T)[None, None, :] == rows[:, :, None]) * amp[:, :, None]).sum(axis=1)  # (B, T)
    cover = rng.uniform(0.6, 1.0, B) * F
    f_lo = rng.uniform(0, 1, B) * (F - cover)
    chan = np.arange(F)
    tilt = rng.uniform(-0.5, 0.5, B)[:, None]  # the impulse's own spectral slope
    fp = ((chan >= f_lo[:, None]) & (chan < (f_lo + cover)[:, None])) * (1 + tilt * (chan / F - 0.5))
    return tp, fp


def bump_factors(rng, B: int, T: int, F: int) -> tuple[np.ndarray, np.ndarray]:
    """Wideband smooth bumps: a gaussian in frequency, FWHM 10..40 channels, slowly varying in time."""
    fwhm = loguniform(rng, (10.0, 40.0), B)[:, None]
    centre = rng.uniform(-0.1 * F, 1.1 * F, B)[:, None]
    fp = np.exp(-0.5 * ((np.arange(F) - centre) / (fwhm / 2.3548)) ** 2)
    ramp = rng.uniform(-0.8, 0.8, B)[:, None]
    tp = 1 + ramp * (np.arange(T) / (T - 1) - 0.5)
    return tp, fp


def blobs(rng, energy: np.ndarray, T: int, F: int, which: np.ndarray) -> np.ndarray:
    """Isolated bright pixels and small RFI blobs: 1..4 rectangles of 1..3 x 1..3 pixels.

    Each blob gets a random share of `energy` (B,), spread evenly over its pixels. Parameters are
    drawn for all B crops; only the crops indexed by `which` (K,) are rendered: (K, T, F).
    """
    B = len(energy)
    nb = rng.integers(1, 5, B)
    h = rng.integers(1, 4, (B, 4))
    w = rng.integers(1, 4, (B, 4))
    r = rng.integers(0, T - 2, (B, 4))
    c = rng.integers(0, F - 2, (B, 4))
    share = (rng.uniform(0.2, 1.0, (B, 4)) * (np.arange(4) < nb[:, None]))
    share /= share.sum(axis=1, keepdims=True)
    per_pixel = energy[:, None] * share / (h * w)  # (B, 4)
    per_pixel, h, w, r, c = (a[which] for a in (per_pixel, h, w, r, c))  # (K, 4) each
    t, f = np.arange(T), np.arange(F)
    rows = ((t >= r[:, :, None]) & (t < (r + h)[:, :, None])) * per_pixel[:, :, None]  # (K, 4, T)
    cols = (f >= c[:, :, None]) & (f < (c + w)[:, :, None])  # (K, 4, F)
    return np.matmul(rows.transpose(0, 2, 1), cols.astype(np.float64)).astype(np.float32)  # (K, T, F)


# --- receiver gain, on both classes ----------------------------------------------------------------------


def bandpass(rng, B: int, F: int, slope_std: float, ripple_max: float, feature: np.ndarray) -> np.ndarray:
    """Gain across frequency (B, F): log-slope and curvature, slow ripple, and where `feature` (B,) bool
    one strong structure: a steep slope (x2.7..x12 across), a gain step (x1.35..x4) or an edge roll-off."""
    u = np.arange(F) / F - 0.5
    slope = rng.normal(0.0, slope_std, B)
    curv = rng.normal(0.0, slope_std / 2, B)
    which = rng.integers(0, 3, B)
    strong = np.where(rng.random(B) < 0.5, -1, 1) * rng.uniform(1.0, 2.5, B)
    slope = np.where(feature & (which == 0), strong, slope)
    logg = slope[:, None] * u + curv[:, None] * u**2
    ripple = 1 + rng.uniform(0, ripple_max, B)[:, None] * np.sin(
        2 * np.pi * np.arange(F) / loguniform(rng, (16.0, 128.0), B)[:, None] + rng.uniform(0, 2 * np.pi, B)[:, None]
    )
    step_at = rng.integers(8, F - 8, B)[:, None]
    step = np.exp(np.where(rng.random(B) < 0.5, -1, 1) * rng.uniform(0.3, 1.4, B))[:, None]
    g_step = np.where(np.arange(F) >= step_at, step, 1.0)
    edge = rng.uniform(0.1, 0.9, B)[:, None] * F
    soft = rng.uniform(0.7, 4.0, B)[:, None]
    floor = rng.uniform(0.05, 0.5, B)[:, None]
    side = np.where(rng.random(B) < 0.5, -1, 1)[:, None]
    g_roll = floor + (1 - floor) / (1 + np.exp(-side * (np.arange(F) - edge) / soft))
    g = np.exp(logg) * ripple
    g = np.where((feature & (which == 1))[:, None], g * g_step, g)
    g = np.where((feature & (which == 2))[:, None], g * g_roll, g)
    return g.astype(np.float32)


def gain_drift(rng, B: int, T: int, prob: float) -> np.ndarray:
    """Slow gain drift over time (B, T): a ramp of up to +-20 % plus a slow wave of up to 10 %, on `prob` of crops."""
    t = np.arange(T) / (T - 1)
    on = rng.random(B) < prob
    ramp = rng.uniform(-0.2, 0.2, B)[:, None] * (2 * t - 1)
    wave = rng.uniform(0, 0.1, B)[:, None] * np.sin(
        2 * np.pi * t * T / rng.uniform(64, 256, B)[:, None] + rng.uniform(0, 2 * np.pi, B)[:, None]
    )
    return np.where(on[:, None], 1 + ramp + wave, 1.0).astype(np.float32)
