"""Every execution path scores within its tolerance of the fp32 eager model (PERF_NOTES figures)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cropray.fastpath import PATHS, TOLERANCE, build_scorer, detect
from cropray.fastpath.fold import fold_batchnorm
from cropray.fastpath.policy import flips
from cropray.models import build_model


def _eager(model, x):
    with torch.inference_mode():
        return model(torch.from_numpy(x)).numpy()


def _check(ref, got, precision, threshold):
    assert got.shape == ref.shape and got.dtype == np.float32
    assert np.isfinite(got).all()
    d = np.abs(got.astype(np.float64) - ref)
    assert d.max() <= TOLERANCE[precision], f"max |d score| {d.max():.3g} > {TOLERANCE[precision]}"
    if precision == "fp32":  # same maths, other kernels: no decision may change
        assert flips(ref, got, threshold) == 0
    else:  # reduced precision: typical error well inside the bound (how many flip depends on the
        # bundle's scores near its threshold: auto's guard judges that, test_fastpath_policy)
        assert d.mean() <= TOLERANCE[precision] / 5


@pytest.mark.parametrize("name", ["fold_cl", "bf16"])
def test_eager_paths_match_fp32(trained_shallow, fixed_batch, name):
    spec = PATHS[name]
    ok, why = detect().can_run(spec.precision, "cpu", spec.compiled)
    if not ok:
        pytest.skip(why)
    tm = trained_shallow
    ref = _eager(tm.model, fixed_batch)
    s = build_scorer(tm.model, path=name, threshold=tm.threshold, batch_size=128)
    got = s(fixed_batch)
    _check(ref, got, spec.precision, tm.threshold)
    d = s.describe()
    assert d["path"] == name and d["bn_folded"] == 3 and d["bn_left"] == 0 and d["channels_last"]


def test_one_compiled_path_pads_and_matches(trained_shallow, fixed_batch):
    """The single compiled case (compile is slow here): int8 PT2E when the machine can, else fp32.

    Calls of 5, 64 and 64+13 crops all go through the one graph traced at batch 64 (padded/chunked).
    """
    caps = detect()
    name = "int8" if caps.can_run("int8", "cpu", True)[0] else "compile_fp32"
    if not caps.can_run(PATHS[name].precision, "cpu", True)[0]:
        pytest.skip("no inductor on this machine")
    tm = trained_shallow
    s = build_scorer(tm.model, path=name, threshold=tm.threshold, batch_size=64,
                     calibration=tm.calibration_crops)
    d = s.describe()
    assert d["path"] == name and d["compiled"] and d["compile_s"] > 0, d
    x = fixed_batch[:64 + 13]
    ref = _eager(tm.model, x)
    got = np.concatenate([s(x[:5]), s(x[5:69]), s(x[69:])])  # 5 (padded), 64 (exact), 8 (padded)
    _check(ref, got, PATHS[name].precision, tm.threshold)
    np.testing.assert_array_equal(s(x)[:5], got[:5])  # padding rows never leak into real rows


def test_read_only_input_is_scored_without_copy_errors(trained_shallow, fixed_batch):
    x = fixed_batch[:16].copy()
    x.flags.writeable = False  # Ray / Arrow batches are read-only views
    s = build_scorer(trained_shallow.model, path="fold_cl")
    out = s(x)
    assert out.shape == (16,) and out.dtype == np.float32
    np.testing.assert_array_equal(x, fixed_batch[:16])  # the input is untouched
    assert s(x[:0]).shape == (0,)  # an empty batch (a fully quarantined Ray batch) is fine


@pytest.mark.parametrize("arch", ["deep_cnn", "siamese"])
def test_bn_folding_is_exact_on_every_conv_model(arch, fixed_batch):
    torch.manual_seed(0)
    model = build_model(arch).eval()
    for m in model.modules():  # non-trivial BN statistics, as after training
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
    if arch == "siamese":
        with torch.inference_mode():
            model.set_gallery(model.embed(torch.from_numpy(fixed_batch[:16])), [1] * 8 + [0] * 8)
    folded, n_folded, left = fold_batchnorm(model)
    assert left == 0 and n_folded == sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    x = fixed_batch[:32]
    np.testing.assert_allclose(_eager(folded, x), _eager(model, x), atol=1e-5)
