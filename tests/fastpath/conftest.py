"""A briefly trained shallow CNN and a fixed batch of synthetic crops, shared by the fast-path tests."""

from __future__ import annotations

import pytest

from cropray.bench.trained import synth_xy, train_briefly


@pytest.fixture(scope="session")
def trained_shallow():
    # Few steps: enough to move BN statistics and weights off their random init (reduced precision
    # error on random weights is 5-15x larger), cheap on 2 shared cores.
    # Bounded by steps, not seconds, so the model is the same however busy the machine is.
    return train_briefly("shallow_cnn", seconds=float("inf"), max_steps=30, n_train=512, seed=0)


@pytest.fixture(scope="session")
def fixed_batch():
    x, _ = synth_xy(512, seed=11)  # (512, 1, 64, 64) float32, crops never seen in training
    return x
