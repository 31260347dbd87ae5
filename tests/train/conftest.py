"""Small, easy synthetic sets shared by the training tests (bright signals: SNR 30-100)."""

import numpy as np
import pytest


def easy_set(n: int, seed: int):
    from cropray.synth import SynthConfig, generate

    b = generate(n, SynthConfig(snr_range=(30.0, 100.0)), seed=seed)
    return b.crops[:, None].astype(np.float32), b.label.astype(np.int64)


@pytest.fixture(scope="session")
def easy_train():
    return easy_set(300, seed=11)


@pytest.fixture(scope="session")
def easy_test():
    return easy_set(600, seed=12)
