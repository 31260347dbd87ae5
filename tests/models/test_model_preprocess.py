"""RobustNorm: scale invariance, bandpass flattening that keeps narrowband tones, hand-checked medians."""

from __future__ import annotations

import itertools

import pytest
import torch

from cropray.models.preprocess import RobustNorm, fast_asinh, running_median, subsample_stride


def noise(b=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.empty(b, 1, 64, 64).exponential_(generator=g)  # (B, 1, T, F), mean power 1


@pytest.mark.parametrize("flatten,row_center,compress",
                         list(itertools.product([True, False], [True, False], ["asinh", "none"])))
def test_scale_invariance(flatten, row_center, compress):
    m = RobustNorm(flatten=flatten, row_center=row_center, compress=compress)
    x = noise() * 5.0
    ref = m(x)
    for scale in (1e-3, 1e4):
        assert torch.allclose(m(x * scale), ref, atol=1e-5), scale


def test_running_median_by_hand():
    # A ramp is continued exactly at the edges (point reflection about the edge level).
    ramp = torch.arange(10.0).reshape(1, 10)
    assert running_median(ramp, 5).tolist() == ramp.tolist()
    # One-channel spikes (a narrowband tone), even in the edge channel, do not move the level.
    y = torch.full((1, 9), 2.0)
    y[0, 0], y[0, 4] = 50.0, 30.0
    assert running_median(y, 5).tolist() == [[2.0] * 9]
    # [1, 100, 2, 3, 4], window 3: anchors median(1, 100, 2) = 2 (at channel 1) and median(2, 3, 4) = 3
    # (at channel 3); pads 2*2 - x[3] = 1 and 2*3 - x[1] = -94 -> [1 | 1, 100, 2, 3, 4 | -94]
    # windows (1,1,100) (1,100,2) (100,2,3) (2,3,4) (3,4,-94) -> medians 1, 2, 3, 3, 3
    x = torch.tensor([[1.0, 100.0, 2.0, 3.0, 4.0]])
    assert running_median(x, 3).tolist() == [[1.0, 2.0, 3.0, 3.0, 3.0]]


def test_flattening_removes_a_bandpass_slope():
    slope = torch.linspace(1.0, 20.0, 64)  # (F,) gain rising 20x across the crop
    z = RobustNorm(compress="none")(noise(8) * slope)  # (B, 1, T, F)
    level = z.mean(dim=(0, 1, 2))  # (F,) per-channel mean after normalisation
    # flat, edges included: no trace of the 20x slope (pure noise gives a std of ~0.06 here)
    assert level.std() < 0.09, level
    unflat = RobustNorm(flatten=False, compress="none")(noise(8) * slope).mean(dim=(0, 1, 2))
    assert unflat[-8:].mean() - unflat[:8].mean() > 1.5  # without flattening the slope dominates


def test_flattening_keeps_a_constant_narrowband_tone():
    # A tone in channel 30 in every row: its median over time IS the tone, so dividing each channel by
    # its own time median would erase it. The running median across frequency must keep it.
    x = noise(4)
    x[:, :, :, 30] += 2.0  # 2x the mean noise power, constant over time
    z = RobustNorm(compress="none")(x)
    tone = z[:, 0, :, 30].mean()
    rest = torch.cat([z[:, 0, :, :28], z[:, 0, :, 33:]], dim=2).mean()
    assert tone - rest > 1.5, (tone, rest)


def test_row_center_removes_broadband_impulse_but_keeps_tone():
    x = noise(2)
    x[:, :, 10, :] += 50.0  # broadband impulse in row 10
    x[:, :, :, 40] += 3.0  # narrowband tone
    z = RobustNorm(row_center=True, compress="none")(x)
    z0 = RobustNorm(row_center=False, compress="none")(x)
    # 10x smaller (not zero: the ~5% error of the bandpass estimate scales a 50x impulse too)
    assert z[:, 0, 10, :40].abs().mean() < 0.1 * z0[:, 0, 10, :40].abs().mean()
    assert z[:, 0, :, 40].mean() > 1.5  # the tone survives row centring


def test_constant_and_zero_crops_are_finite():
    m = RobustNorm()
    for x in (torch.zeros(2, 1, 64, 64), torch.full((2, 1, 64, 64), 7.0)):
        assert torch.isfinite(m(x)).all()


def test_fast_asinh_matches_torch():
    z = torch.cat([torch.linspace(-50, 50, 10001), torch.tensor([0.0, 1e-30, -1e-8, 1e6, -1e12, 3e38])])
    assert torch.allclose(fast_asinh(z), torch.asinh(z), rtol=1e-6, atol=1e-6)
    z = torch.linspace(-3, 3, 7, requires_grad=True)  # includes 0, where sign/abs forms go wrong
    fast_asinh(z).sum().backward()  # d/dz asinh = 1 / sqrt(1 + z^2)
    assert torch.allclose(z.grad, 1 / torch.sqrt(1 + z.detach() ** 2), atol=1e-6)


def test_subsample_stride_samples_every_channel():
    assert subsample_stride(64 * 64, 64) == 3
    assert subsample_stride(60 * 60, 60) == 7  # 3 and 5 divide 60
    assert subsample_stride(16 * 16, 16) == 1  # too few pixels to subsample
    s = subsample_stride(4096, 64)
    assert set((torch.arange(0, 4096, s) % 64).tolist()) == set(range(64))
