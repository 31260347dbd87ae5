"""The numpy RobustNorm of the fast paths equals the model's own module (catches either one drifting)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cropray.fastpath.preprocess import NumpyRobustNorm, split_preprocess
from cropray.models import RobustNorm, build_model


@pytest.mark.parametrize("cfg", [{}, {"row_center": True}, {"compress": "none"}, {"flatten": False},
                                 {"flatten_window": 3}, {"flatten_window": 61}])
def test_numpy_robust_norm_matches_the_model(fixed_batch, cfg):
    x = fixed_batch[:64].copy()
    x[0] = 5.0  # constant crop: the floors, not the MAD, set the scale
    x[1, :, :, :10] = 0.0  # dead channels (uint8 archives)
    x[2] = np.round(x[2] / x[2].max() * 255)  # integer levels: many tied values for the medians
    ref = RobustNorm(**cfg)
    with torch.inference_mode():
        a = ref(torch.from_numpy(x)).numpy()
        b = NumpyRobustNorm(ref)(torch.from_numpy(x)).numpy()
    # medians are selections (bit-exact); only asinh implementations may differ in the last bits
    np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)


def test_non_finite_batches_fall_back_to_the_model(fixed_batch):
    x = fixed_batch[:4].copy()
    x[1, 0, 3, 3] = np.nan
    ref = RobustNorm()
    with torch.inference_mode():
        a = ref(torch.from_numpy(x)).numpy()
        b = NumpyRobustNorm(ref)(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_array_equal(a[~np.isnan(a)], b[~np.isnan(b)])


def test_split_refuses_a_preprocess_it_does_not_reproduce(fixed_batch):
    model = build_model("shallow_cnn").eval()
    model.preprocess.flatten_window = 31  # the numpy copy reads the config, so make them disagree:
    ex = torch.from_numpy(fixed_batch[:8])
    fast = NumpyRobustNorm(model.preprocess)
    fast.cfg["flatten_window"] = 15
    assert fast.cfg != {"flatten": True, "flatten_window": 31, "row_center": False, "compress": "asinh"}
    pre, how = split_preprocess(model, ex)  # agrees (reads the live config) -> split
    assert pre is not None and "numpy" in how and isinstance(model.preprocess, torch.nn.Identity)
