"""Injected training crops from archive backgrounds: signals in the archive's own units, plain negatives.

Each usable background is used once: a share `inject_fraction` gets one signal (label 1), the rest
stay as they are (label 0), so a positive and a negative never share a background. A signal of SNR s
(defined as in `cropray.synth`: on the de-drifted, time-integrated spectrum) has per-pixel peak
amplitude s * sigma_f / sqrt(T) at channel f, sigma_f the background's own robust noise std there
(`noise_sigma`): the bandpass scales signal and noise alike, as in a receiver.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cropray.inject.config import InjectConfig
from cropray.inject.exclude import exclusion_threshold, track_statistic
from cropray.inject.noise import noise_sigma
from cropray.inject.sample import Backgrounds
from cropray.inject.signals import draw_signals, signal_config

CHUNK = 1024  # crops per injection step: bounds the (CHUNK, T, F) temporaries


@dataclass
class InjectedSet:
    """Training crops made from archive backgrounds. Never used for folds, thresholds or metrics."""

    x: np.ndarray  # (N, 1, H, W) float32 raw power
    y: np.ndarray  # (N,) int64: 1 = injected signal, 0 = plain background
    snr: np.ndarray  # (N,) float32 injected SNR; NaN for plain backgrounds
    track: np.ndarray  # (N,) str injected track morphology; "" for plain backgrounds
    source_id: np.ndarray  # (N,) object: crop_id of the archive background each crop was made from
    summary: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)


def _inject(x: np.ndarray, cfg: InjectConfig, rng) -> tuple[np.ndarray, np.ndarray]:
    """Add one signal to every crop of x (N, 1, T, F) in place; returns (snr, track) per crop."""
    n, _, T, F = x.shape
    scfg = signal_config(cfg.kinds, cfg.snr_range)
    snr, track = np.empty(n, np.float32), np.empty(n, object)
    for i in range(0, n, CHUNK):
        b = x[i:i + CHUNK, 0]  # (b, T, F) view
        s = draw_signals(rng, len(b), T, F, scfg)
        amp = (s["snr"] / np.sqrt(T))[:, None] * noise_sigma(b)  # (b, F) per-pixel peak amplitude per channel
        b += s["template"] * amp[:, None, :]
        snr[i:i + CHUNK], track[i:i + CHUNK] = s["snr"], s["track"]
    return snr, track


def build_injected(bg: Backgrounds, neg_x: np.ndarray, cfg: InjectConfig) -> InjectedSet:
    """Exclude backgrounds that already look like signals, inject into a share of the rest (module doc).

    neg_x (M, 1, H, W): the labelled negatives, whose track statistic sets the exclusion threshold.
    """
    stat = track_statistic(bg.x) if len(bg) else np.zeros(0, np.float32)
    thr = exclusion_threshold(track_statistic(neg_x) if len(neg_x) else np.zeros(0), cfg.exclude_quantile)
    usable = np.flatnonzero(np.isfinite(stat) & (stat <= thr))
    rng = np.random.default_rng(np.random.SeedSequence(int(cfg.seed), spawn_key=(0x1B3,)))
    order = usable[rng.permutation(len(usable))]
    n_inj = int(round(cfg.inject_fraction * len(order)))
    x = bg.x[order]  # (U, 1, H, W) copy: injected first, plain after
    snr = np.full(len(x), np.nan, np.float32)
    track = np.full(len(x), "", object)
    snr[:n_inj], track[:n_inj] = _inject(x[:n_inj], cfg, rng)
    y = (np.arange(len(x)) < n_inj).astype(np.int64)
    warnings = []
    if len(x) < cfg.min_backgrounds:
        warnings.append(f"only {len(x):,} usable background crops from the archive ({len(bg):,} drawn, "
                        f"{len(bg) - len(x):,} excluded); training on what there is (min_backgrounds "
                        f"{cfg.min_backgrounds:,})")
    summary = {
        **bg.summary(),
        "excluded": int(len(bg) - len(x)),
        "excluded_rule": f"dedoppler track statistic > {thr:.3f} = the {cfg.exclude_quantile:g} quantile on "
                         f"{len(neg_x)} labelled negatives (the crop may already hold a signal)",
        "exclude_threshold": round(thr, 4) if np.isfinite(thr) else None,
        "usable": int(len(x)), "injected": int(n_inj), "plain": int(len(x) - n_inj),
        "settings": cfg.to_dict(),
        "injected_tracks": {k: int(v) for k, v in zip(*np.unique(track[:n_inj].astype(str), return_counts=True))},
    }
    return InjectedSet(x=x, y=y, snr=snr, track=track.astype(str), source_id=bg.crop_id[order], summary=summary,
                       warnings=warnings)


def inject_from_archive(archive, labeled_x: np.ndarray, labeled_y: np.ndarray, cfg: InjectConfig, *,
                        crop_shape=None) -> InjectedSet:
    """Sample `cfg.archive_crops` backgrounds from `archive` and build the injected set.

    labeled_x (N, 1, H, W), labeled_y (N,): the real labels; their crop shape is the one the archive
    must have (CroprayError naming both otherwise), their negatives set the exclusion threshold.
    """
    from cropray.inject.sample import sample_backgrounds

    bg = sample_backgrounds(archive, cfg.archive_crops, cfg.seed, crop_shape=crop_shape,
                            expect_shape=tuple(labeled_x.shape[-2:]), oversample=cfg.read_oversample)
    out = build_injected(bg, labeled_x[np.asarray(labeled_y) == 0], cfg)
    if bg.failed:
        out.warnings.append(f"{len(bg.failed)} archive file(s) unreadable, skipped: "
                            + "; ".join(f"{f} ({e})" for f, e in bg.failed[:5]))
    if sum(bg.invalid.values()):
        out.warnings.append(f"{sum(bg.invalid.values())} invalid archive row(s) skipped: {bg.invalid}")
    return out
