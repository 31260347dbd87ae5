"""Augmentations that keep a spectrogram crop's label: (B, 1, T, F) raw power, T = time, F = frequency.

Kept (each draws its parameters per crop from a seeded `torch.Generator`, so a seed fixes the batch):
- frequency roll (circular, up to `aug_freq_roll` bins): a tone's absolute frequency carries no label
  information. Circular rather than a padded shift because a shift can push a drifting track out of the
  crop and leave a positive with no signal; a roll keeps every pixel. The seam it leaves in the bandpass
  is a step, which the model's running-median bandpass flattening follows.
- frequency flip: mirrors the drift sign, and both signs occur (Doppler drift is +/-).
- time roll (small, up to `aug_time_shift` rows): where a pulse or impulse sits in time is arbitrary.
- bandpass tilt: gain exp(a*f) per channel, as real bandpasses slope; it multiplies signal and noise
  in a channel alike, so the SNR (and the label) is unchanged.
- level scaling by 10**U(-d/2, d/2): archives differ by decades. The model's robust normalisation
  (median / MAD, both scale-equivariant) makes its output invariant to it, so this only exercises that
  invariance numerically (e.g. float32 at 1e-4 or 1e4 levels); it costs one multiply.
- additive Gaussian noise up to `aug_noise` x the crop's robust noise scale (1.4826 x MAD): small, so a
  weak positive stays above the noise; power crops stay non-negative (clamped at 0).

Rejected:
- rotations and transposes: they swap time and frequency, turning a narrowband line (signal) into a
  broadband row (impulse, a negative) -- the label flips.
- time flip: drift sign is already covered by the frequency flip, and it makes causal structure run
  backwards (impulse decay tails, switch-on transients), which the archives never contain.
- scale/resize and random resized crops: they change drift rate and bandwidth in pixels and resample the
  noise (interpolation smooths it), so the model would learn interpolation artefacts.
- mixup / cutmix / cutout: a positive mixed with a negative still holds a signal (label 1, not 0.5),
  and cutout can erase the whole narrow track of a positive.
- gamma / contrast jitter: non-linear intensity maps change the noise statistics the normalisation and
  the SNR definition rely on.
"""

from __future__ import annotations

import torch

from cropray.train.config import TrainConfig

MAD_TO_SIGMA = 1.4826


class SpectrogramAugment:
    """Callable: `aug(x (B,1,T,F), generator) -> (B,1,T,F)`; the input is not modified.

    domain="raw": x is raw power (every op). domain="normalised": x already went through the model's
    RobustNorm (the trainer's fast path): level and tilt are skipped -- the normalisation removes them,
    so they are exact / near no-ops there -- and noise is scaled by the normalised crop's own MAD.
    Rolls and flips commute with the normalisation (a time roll and a flip exactly; a frequency roll
    up to the running median's edge handling), so both domains train the same invariances.
    """

    def __init__(self, cfg: TrainConfig, domain: str = "raw"):
        if domain not in ("raw", "normalised"):
            raise ValueError(f"domain must be raw or normalised, got {domain!r}")
        raw = domain == "raw"
        self.freq_roll = cfg.aug_freq_roll
        self.freq_flip = cfg.aug_freq_flip
        self.time_shift = cfg.aug_time_shift
        self.noise = cfg.aug_noise
        self.level_decades = cfg.aug_level_decades if raw else 0.0
        self.tilt = cfg.aug_tilt if raw else 0.0

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        b, _, t, f = x.shape
        dev = x.device

        def uniform(lo: float, hi: float) -> torch.Tensor:  # (B,) drawn on CPU: same draws on any device
            return (lo + (hi - lo) * torch.rand(b, generator=gen)).to(dev)

        x = x.float()
        nonneg = bool((x >= 0).all())
        if self.tilt > 0:
            fr = torch.linspace(-1.0, 1.0, f, device=dev)  # (F,)
            a = uniform(-self.tilt, self.tilt)  # (B,)
            x = x * torch.exp(a[:, None, None, None] * fr)  # gain per channel, (B,1,T,F)
        if self.level_decades > 0:
            h = self.level_decades / 2
            x = x * (10.0 ** uniform(-h, h))[:, None, None, None]
        if self.noise > 0:
            flat = x.reshape(b, -1)  # (B, T*F)
            med = flat.median(dim=1, keepdim=True).values
            sigma = MAD_TO_SIGMA * (flat - med).abs().median(dim=1).values  # (B,)
            eps = torch.randn(x.shape, generator=gen).to(dev)  # (B,1,T,F)
            x = x + eps * (sigma * uniform(0.0, self.noise))[:, None, None, None]
            if nonneg:
                x = x.clamp_min(0.0)
        if self.freq_roll > 0:
            x = _roll_rows(x, torch.randint(-self.freq_roll, self.freq_roll + 1, (b,), generator=gen), dim=3)
        if self.time_shift > 0:
            x = _roll_rows(x, torch.randint(-self.time_shift, self.time_shift + 1, (b,), generator=gen), dim=2)
        if self.freq_flip:
            flip = (torch.rand(b, generator=gen) < 0.5).to(dev)  # (B,)
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return x


def _roll_rows(x: torch.Tensor, shifts: torch.Tensor, dim: int) -> torch.Tensor:
    """Circularly roll each crop of x (B,1,T,F) by its own shift along `dim` (2 = time, 3 = freq)."""
    n = x.shape[dim]
    idx = (torch.arange(n)[None, :] - shifts[:, None]) % n  # (B, n): source index per output index
    idx = idx.to(x.device)
    if dim == 3:
        idx = idx[:, None, None, :].expand_as(x)
    else:
        idx = idx[:, None, :, None].expand_as(x)
    return x.gather(dim, idx)
