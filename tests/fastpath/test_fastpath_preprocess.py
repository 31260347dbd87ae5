"""The numpy RobustNorm of the fast paths equals the model's own module (catches either one drifting)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cropray.fastpath.preprocess import NumpyRobustNorm, split_preprocess
from cropray.models import RobustNorm as ModelRobustNorm
from cropray.models import build_model


@pytest.mark.parametrize("cfg", [{}, {"row_center": True}, {"compress": "none"}, {"flatten": False},
                                 {"flatten_window": 3}, {"flatten_window": 61}])
def test_numpy_robust_norm_matches_the_model(fixed_batch, cfg):
    x = fixed_batch[:64].copy()
    x[0] = 5.0  # constant crop: the floors, not the MAD, set the scale
    x[1, :, :, :10] = 0.0  # dead channels (uint8 archives)
    x[2] = np.round(x[2] / x[2].max() * 255)  # integer levels: many tied values for the medians
    ref = ModelRobustNorm(**cfg)
    with torch.inference_mode():
        a = ref(torch.from_numpy(x)).numpy()
        b = NumpyRobustNorm(ref)(torch.from_numpy(x)).numpy()
    # medians are selections (bit-exact); only asinh implementations may differ in the last bits
    np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-6)


def test_non_finite_batches_fall_back_to_the_model(fixed_batch):
    x = fixed_batch[:4].copy()
    x[1, 0, 3, 3] = np.nan
    ref = ModelRobustNorm()
    with torch.inference_mode():
        a = ref(torch.from_numpy(x)).numpy()
        b = NumpyRobustNorm(ref)(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_array_equal(a[~np.isnan(a)], b[~np.isnan(b)])


class RobustNorm(torch.nn.Module):  # same class name as cropray's, different maths: a drifted preprocess
    """Looks like cropray's RobustNorm (name and config attributes) but computes something else."""

    flatten, flatten_window, row_center, compress = True, 15, False, "asinh"

    def forward(self, x):
        return torch.log1p(x)


def test_split_keeps_torch_when_the_numpy_copy_disagrees(fixed_batch):
    ex = torch.from_numpy(fixed_batch[:8])
    model = build_model("shallow_cnn").eval()
    pre, how = split_preprocess(model, ex)
    assert pre is not None and "numpy" in how and isinstance(model.preprocess, torch.nn.Identity)
    drifted = build_model("shallow_cnn").eval()
    drifted.preprocess = RobustNorm()
    pre, how = split_preprocess(drifted, ex)
    assert pre is None and "disagreed" in how and isinstance(drifted.preprocess, RobustNorm)
