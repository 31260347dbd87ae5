"""`generate(n, cfg, seed)`: realistic synthetic spectrogram crops, vectorised over blocks of crops.

A crop is (T, F) raw power = (noise + excess) * bandpass(f) * gain_drift(t):
  noise   chi-square radiometer noise, mean `noise_level` (log-uniform over >= 5 decades), dof nu,
          per-pixel std sigma = noise_level / sqrt(nu)
  excess  positives: one narrowband signal (+ occasionally interference); negatives: nothing,
          broadband impulses, blobs, wideband bumps, or (bandpass kind) a strong gain structure
The receiver gain multiplies signal and noise alike, so SNR does not depend on it.

SNR (positives) is defined on the de-drifted time-integrated spectrum: the per-pixel peak amplitude
is A = snr * sigma / sqrt(T), the envelope has mean 1 over the crop, so summing the signal along its
track gives T * A = snr * sigma * sqrt(T), i.e. snr times the noise std of a sum of T pixels.
Negatives draw an excess energy from the same law as a positive's (snr * sigma * sqrt(T) * width), so
total crop brightness carries no label information.

Determinism: crops are made in blocks of BLOCK; block b uses SeedSequence(seed).spawn()[b]'s stream.
Crop i therefore depends only on (seed, i, cfg): not on n, chunking or how many files are written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cropray.synth import components as C
from cropray.synth.config import ENVELOPES, NEGATIVE_KINDS, PROFILES, TRACKS, SynthConfig

BLOCK = 512  # crops per RNG block; bounds the (BLOCK, T, F) temporaries (~8 MB each in float32)


@dataclass
class SynthBatch:
    """n synthetic crops and their truth. Per-crop arrays have shape (n,)."""

    crops: np.ndarray  # (n, T, F) float32 raw power
    label: np.ndarray  # int8: 1 = narrowband signal, 0 = not
    snr: np.ndarray  # float32: SNR of the de-drifted time-integrated spectrum; NaN for negatives
    kind: np.ndarray  # str: narrowband[_drift|_curved|_wobble|_wander] (+rfi) | noise | impulse | blob | bump | bandpass
    drift_rate: np.ndarray  # float32 channels per row (0 for non-drifting signals and negatives)
    width: np.ndarray  # float32 channels; NaN for negatives
    profile: np.ndarray  # str: gaussian | sinc2 | boxcar; "" for negatives
    envelope: np.ndarray  # str: constant | scintillating | pulsed; "" for negatives
    noise_level: np.ndarray  # float32 mean noise power before gain
    noise_std: np.ndarray  # float32 per-pixel noise std before gain (sigma in the SNR definition)
    t_offset_s: np.ndarray  # float64 start time of the crop in its observation
    f_offset_hz: np.ndarray  # float64 frequency of channel 0
    track_centre: np.ndarray  # float32 (n, T): the signal's centre channel in each row; NaN for negatives

    def __len__(self) -> int:
        return len(self.label)


_FIELDS = [k for k in SynthBatch.__dataclass_fields__ if k != "crops"]
SIGNAL_KINDS = ("narrowband", "narrowband_drift", "narrowband_curved", "narrowband_wobble", "narrowband_wander")  # by TRACKS


def _render_block(rng: np.random.Generator, cfg: SynthConfig) -> dict:
    """One block of BLOCK crops. Every draw has a size fixed by BLOCK (never by class counts)."""
    B, T, F = BLOCK, cfg.time_bins, cfg.freq_channels
    pos = rng.random(B) < cfg.positive_fraction
    level = C.loguniform(rng, cfg.noise_level_range, B)
    dof = C.loguniform(rng, cfg.dof_range, B)
    sigma = level / np.sqrt(dof)
    snr = C.loguniform(rng, cfg.snr_range, B)
    width = C.loguniform(rng, cfg.width_range, B)
    neg_kind = _choice(rng, cfg.negative_weights, NEGATIVE_KINDS, B)
    prof = _choice(rng, cfg.profile_weights, PROFILES, B)
    env_kind = _choice(rng, cfg.envelope_weights, ENVELOPES, B)
    track = C.pick_tracks(rng.random(B), cfg.drifting_fraction, cfg.track_weights, TRACKS)  # (B,) into TRACKS
    drifting = track != TRACKS.index("none")
    drift = np.where(drifting, np.where(rng.random(B) < 0.5, -1, 1) * rng.uniform(*cfg.drift_range, B), 0.0)
    u_f0 = rng.random(B)  # where each track starts; placed below, once its shape is drawn
    env = C.envelopes(rng, env_kind, T)
    # interference on some positives: its own energy draw, impulse or blob
    rfi = pos & (rng.random(B) < cfg.rfi_on_positive)
    rfi_is_impulse = rng.random(B) < 0.5
    rfi_energy = C.loguniform(rng, cfg.snr_range, B) * sigma * np.sqrt(T) * C.loguniform(rng, cfg.width_range, B)
    neg_energy = snr * sigma * np.sqrt(T) * width  # same law as a positive's total signal energy

    def neg(name):
        return ~pos & (neg_kind == NEGATIVE_KINDS.index(name))

    has_imp = neg("impulse") | (rfi & rfi_is_impulse)
    has_blob = neg("blob") | (rfi & ~rfi_is_impulse)
    has_bump = neg("bump")
    feature = (rng.random(B) < cfg.bandpass_feature_prob) | neg("bandpass")
    # all factor draws happen for the whole block, so the stream never depends on class counts
    imp_t, imp_f = C.impulse_factors(rng, B, T, F)
    bump_t, bump_f = C.bump_factors(rng, B, T, F)
    i_blob = np.flatnonzero(has_blob)
    blob_px = C.blobs(rng, np.where(pos, rfi_energy, neg_energy), T, F, i_blob)  # (len(i_blob), T, F)
    gain_f = C.bandpass(rng, B, F, cfg.bandpass_slope_std, cfg.ripple_max, feature)  # (B, F)
    gain_t = C.gain_drift(rng, B, T, cfg.gain_drift_prob)  # (B, T)
    noise = rng.standard_gamma(dof.astype(np.float32)[:, None, None], size=(B, T, F), dtype=np.float32)
    t_off = rng.integers(0, 4096, B) * cfg.row_seconds
    f_off = 1.1e9 + rng.integers(0, 2**28, B) * cfg.channel_width_hz
    # track shapes are drawn last, so configs without the new morphologies keep the original stream
    offsets = C.track_offsets(rng, track, drift, T, TRACKS, cfg.drift_range[1])  # (B, T) channels from row 0
    centre = C.place_tracks(u_f0, offsets, F, cfg.min_track_fraction)[:, None] + offsets  # (B, T)

    # x = noise_level * chi2(2 nu)/(2 nu): gamma(nu, 1) / nu has mean 1, std 1/sqrt(nu)
    noise *= (level / dof).astype(np.float32)[:, None, None]
    x = noise  # (B, T, F), in place: the block's one big array
    p = np.flatnonzero(pos)
    amp = snr[p] * sigma[p] / np.sqrt(T)  # per-pixel peak amplitude, see the module docstring
    x[p] += C.narrowband(amp, None, None, width[p], prof[p], env[p], F, centre=centre[p])
    _add_separable(x, has_imp, imp_t, imp_f, np.where(pos, rfi_energy, neg_energy))
    _add_separable(x, has_bump, bump_t, bump_f, neg_energy)
    x[i_blob] += blob_px
    x *= gain_f[:, None, :]
    x *= gain_t[:, :, None]

    drift = np.where(track <= TRACKS.index("straight"), drift, offsets[:, -1] / (T - 1))  # mean drift
    return dict(
        crops=x,
        label=pos.astype(np.int8),
        snr=np.where(pos, snr, np.nan).astype(np.float32),
        kind=_kinds(pos, rfi, neg_kind, track),
        drift_rate=np.where(pos, drift, 0.0).astype(np.float32),
        width=np.where(pos, width, np.nan).astype(np.float32),
        profile=np.where(pos, np.asarray(PROFILES, dtype=object)[prof], ""),
        envelope=np.where(pos, np.asarray(ENVELOPES, dtype=object)[env_kind], ""),
        noise_level=level.astype(np.float32),
        noise_std=sigma.astype(np.float32),
        t_offset_s=t_off.astype(np.float64),
        f_offset_hz=f_off.astype(np.float64),
        track_centre=np.where(pos[:, None], centre, np.nan).astype(np.float32),
    )


def _add_separable(x: np.ndarray, has: np.ndarray, t_factor: np.ndarray, f_factor: np.ndarray,
                   energy: np.ndarray) -> None:
    """In place: x[i] += s_i * outer(t_factor[i], f_factor[i]) for the crops i where `has`, with s_i
    set so that crop i's total excess equals energy[i]. x (B, T, F); factors (B, T) and (B, F)."""
    i = np.flatnonzero(has)
    scale = energy[i] / (t_factor[i].sum(axis=1) * f_factor[i].sum(axis=1))
    x[i] += ((scale[:, None] * t_factor[i])[:, :, None] * f_factor[i][:, None, :]).astype(np.float32)


def _kinds(pos: np.ndarray, rfi: np.ndarray, neg_kind: np.ndarray, track: np.ndarray) -> np.ndarray:
    """(B,) object: the negative's kind, or the signal's track kind (+rfi when interference was added)."""
    sig_kind = np.asarray(SIGNAL_KINDS, dtype=object)[track]
    return np.where(pos, np.where(rfi, sig_kind + "+rfi", sig_kind), np.asarray(NEGATIVE_KINDS, dtype=object)[neg_kind])


def _choice(rng, weights: dict, names: tuple, size: int) -> np.ndarray:
    p = np.array([float(weights.get(k, 0.0)) for k in names])
    return rng.choice(len(names), size=size, p=p / p.sum())


def block_rng(seed: int, block: int) -> np.random.Generator:
    """The generator of block `block`: equal to default_rng(SeedSequence(seed).spawn(block + 1)[block])."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(block,)))


def generate(n: int, cfg: SynthConfig | None = None, seed: int = 0, *, start: int = 0) -> SynthBatch:
    """Crops start .. start+n-1 of the synthetic stream for (cfg, seed); see the module docstring.

    Deterministic: the same (cfg, seed) gives the same crop i whatever n, start or chunking.
    """
    cfg = cfg or SynthConfig()
    n, start, seed = int(n), int(start), int(seed)
    if n < 0 or start < 0 or seed < 0:
        raise ValueError(f"n, start and seed must be >= 0, got {n}, {start}, {seed}")
    T, F = cfg.time_bins, cfg.freq_channels
    crops = np.empty((n, T, F), np.float32)
    parts: dict[str, list] = {k: [] for k in _FIELDS}
    stop = start + n
    for b in range(start // BLOCK, (stop + BLOCK - 1) // BLOCK):
        lo, hi = max(start, b * BLOCK), min(stop, (b + 1) * BLOCK)  # global rows wanted from this block
        blk = _render_block(block_rng(seed, b), cfg)
        sl = slice(lo - b * BLOCK, hi - b * BLOCK)
        crops[lo - start : hi - start] = blk["crops"][sl]
        for k in _FIELDS:
            parts[k].append(blk[k][sl])
    cols = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in parts.items()}
    for k in ("kind", "profile", "envelope"):
        cols[k] = cols[k].astype(str)
    return SynthBatch(crops=crops, **cols)
