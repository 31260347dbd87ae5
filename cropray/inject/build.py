"""Injected training crops from archive backgrounds: signals in the archive's own units, plain negatives.

With plain="negative" or "pu" each usable background is used once: a share `inject_fraction` gets one
signal (label 1), the rest stay as they are (label 0, or UNLABELLED with "pu"), so a positive and a
plain crop never share a background. With plain="paired" every usable background is used twice: the
first half of the set is the plain copies (UNLABELLED), the second half the same backgrounds in the
same order with one signal each (label 1); the trainer draws them as pairs (cropray.train.archive_data). A signal of SNR s
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
UNLABELLED = -1  # label of a plain background that is not a negative (plain="pu" / "paired")


EXCLUDED_KEEP = 2000  # screened-out backgrounds kept (a random sample) for a target-FPR threshold


@dataclass
class InjectedSet:
    """Training crops made from archive backgrounds. Never used for folds, thresholds or metrics."""

    x: np.ndarray  # (N, 1, H, W) float32 raw power
    y: np.ndarray  # (N,) int64: 1 = injected signal, 0 = plain background (a negative), UNLABELLED = plain
    #   background of unknown content
    snr: np.ndarray  # (N,) float32 injected SNR; NaN for plain backgrounds
    track: np.ndarray  # (N,) str injected track morphology; "" for plain backgrounds
    source_id: np.ndarray  # (N,) object: crop_id of the archive background each crop was made from
    summary: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    plain: str = "negative"  # InjectConfig.plain: how the trainer uses the plain crops
    excluded_x: np.ndarray | None = None  # (E', 1, H, W) raw: a random sample (at most EXCLUDED_KEEP) of the
    #   backgrounds the screen excluded, never trained on: a target-FPR threshold needs the archive's bright
    #   backgrounds too (cropray.train.threshold)

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
    n_use = len(order)
    if cfg.plain == "paired":  # (2U, 1, H, W): plain copies, then the same backgrounds injected
        order = np.concatenate([order, order])
        n_inj = n_use
        x = bg.x[order]
        inj = slice(n_use, None)
        y = np.where(np.arange(len(x)) < n_use, UNLABELLED, 1).astype(np.int64)
    else:  # (U, 1, H, W) copy: injected first, plain after
        n_inj = int(round(cfg.inject_fraction * n_use))
        x = bg.x[order]
        inj = slice(0, n_inj)
        plain_label = UNLABELLED if cfg.plain == "pu" else 0
        y = np.where(np.arange(len(x)) < n_inj, 1, plain_label).astype(np.int64)
    snr = np.full(len(x), np.nan, np.float32)
    track = np.full(len(x), "", object)
    snr[inj], track[inj] = _inject(x[inj], cfg, rng)
    warnings = []
    if n_use < cfg.min_backgrounds:
        warnings.append(f"only {n_use:,} usable background crops from the archive ({len(bg):,} drawn, "
                        f"{len(bg) - n_use:,} excluded); training on what there is (min_backgrounds "
                        f"{cfg.min_backgrounds:,})")
    summary = {
        **bg.summary(),
        "excluded": int(len(bg) - n_use),
        "excluded_rule": f"dedoppler track statistic > {thr:.3f} = the {cfg.exclude_quantile:g} quantile on "
                         f"{len(neg_x)} labelled negatives (the crop may already hold a signal)",
        "exclude_threshold": round(thr, 4) if np.isfinite(thr) else None,
        "usable": int(n_use), "injected": int(n_inj), "plain": int(len(x) - n_inj), "plain_as": cfg.plain,
        "settings": cfg.to_dict(),
        "injected_tracks": {k: int(v) for k, v in zip(*np.unique(track[inj].astype(str), return_counts=True))},
    }
    bright = np.flatnonzero(np.isfinite(stat) & (stat > thr))  # screened out (finite: scorable)
    summary["excluded_bright"] = int(len(bright))
    excluded = np.sort(rng.permutation(bright)[:EXCLUDED_KEEP])
    return InjectedSet(x=x, y=y, snr=snr, track=track.astype(str), source_id=bg.crop_id[order], summary=summary,
                       warnings=warnings, plain=cfg.plain, excluded_x=bg.x[excluded])


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
