"""Augmentations keep shape and label-relevant structure, and are fixed by the seed."""

import dataclasses

import torch

from cropray.train.augment import SpectrogramAugment, _roll_rows
from cropray.train.config import TrainConfig


def _batch():
    g = torch.Generator().manual_seed(1)
    return torch.rand(5, 1, 64, 64, generator=g) * 100  # raw power, positive


def test_shape_dtype_and_determinism():
    x = _batch()
    x0 = x.clone()
    aug = SpectrogramAugment(TrainConfig())
    a = aug(x, torch.Generator().manual_seed(7))
    b = aug(x, torch.Generator().manual_seed(7))
    c = aug(x, torch.Generator().manual_seed(8))
    assert a.shape == x.shape and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(x, x0)  # input untouched
    assert torch.isfinite(a).all() and (a >= 0).all()  # power stays non-negative


def test_roll_moves_a_tone_and_keeps_it():
    x = torch.zeros(2, 1, 8, 16)
    x[:, :, :, 3] = 1.0  # non-drifting tone in channel 3
    y = _roll_rows(x, torch.tensor([2, -5]), dim=3)
    assert y[0, 0, :, 5].eq(1).all() and y[1, 0, :, 14].eq(1).all()  # (3 - 5) % 16 = 14
    assert y.sum() == x.sum()


def test_only_geometric_ops_preserve_pixels():
    # With the intensity ops off, every output crop is a permutation of its input's pixels.
    cfg = dataclasses.replace(TrainConfig(), aug_noise=0.0, aug_level_decades=0.0, aug_tilt=0.0)
    x = _batch()
    y = SpectrogramAugment(cfg)(x, torch.Generator().manual_seed(3))
    assert torch.allclose(y.reshape(5, -1).sort(dim=1).values, x.reshape(5, -1).sort(dim=1).values)
    assert not torch.equal(x, y)
