"""dedoppler: the Taylor tree against a per-track reference, detection of hand-built tracks, and the
numpy route of eager CPU inference against the torch code (which tracing and export must still get)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from cropray.models import build_model
from cropray.models.taylor import eager_cpu, taylor_tree, torch_code, track_snr


def staircase(n: int, d: int) -> list[int]:
    """Taylor's track of drift d over n rows: first half drift d//2, second half d - d//2 further on."""
    if n == 1:
        return [0]
    half = staircase(n // 2, d // 2)
    return half + [d - d // 2 + c for c in half]


def test_staircase_is_a_straight_line_within_one_channel():
    for d in range(64):
        p = staircase(64, d)
        assert p[0] == 0 and p[-1] == d
        assert max(abs(p[r] - d * r / 63) for r in range(64)) <= 1.0


def test_taylor_tree_equals_per_track_reference():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 8, 11, generator=g)  # (N, T2 = 8 rows, W = 11 channels)
    got = taylor_tree(z)
    for d in range(8):
        path = staircase(8, d)
        for f in range(11):
            ref = sum(z[:, r, f + path[r]] for r in range(8) if f + path[r] < 11)  # zero past the edge
            assert torch.allclose(got[:, d, f], ref, atol=1e-5), (d, f)


def noisy(b: int, seed: int) -> torch.Tensor:
    """(b, 1, 64, 64) exponential noise (std = mean = 1) times a bandpass slope, at a 1e3 level."""
    g = torch.Generator().manual_seed(seed)
    slope = torch.linspace(0.6, 1.6, 64)
    return 1e3 * slope * torch.empty(b, 1, 64, 64).exponential_(generator=g)


def with_track(x: torch.Tensor, f0: float, drift: float, amp: float = 2.0) -> torch.Tensor:
    """Add a 1-channel track f0 + drift * t of `amp` x the local noise mean (per-pixel SNR ~ amp)."""
    x = x.clone()
    slope = torch.linspace(0.6, 1.6, 64)
    for t in range(64):
        f = round(f0 + drift * t)
        if 0 <= f < 64:
            x[:, 0, t, f] += amp * 1e3 * slope[f]
    return x


def test_finds_drifting_and_steady_tracks_far_above_noise():
    m = build_model("dedoppler").eval()
    base = noisy(1, seed=1)
    with torch.no_grad():
        noise_scores = m(noisy(48, seed=2))
        # track sum ~ 64 * amp over sqrt(64) noise: SNR ~ 16 before compression; pure noise reads ~6
        # (the maximum over ~20K tracks), a track ~11-15
        for f0, drift in ((10.0, 0.5), (50.0, -0.7), (32.0, 0.0), (0.0, 1.0), (63.0, -1.0), (20.0, 0.13)):
            s = m(with_track(base, f0, drift))
            assert s > noise_scores.max() + 2.0, (f0, drift, float(s), float(noise_scores.max()))


def test_broadband_impulses_score_like_noise():
    m = build_model("dedoppler").eval()
    x = noisy(16, seed=3)
    x[:, :, 5, :] += 3e4  # strong broadband impulse rows (30x the noise)
    x[:, :, 40, :] += 1e4
    with torch.no_grad():
        signal = m(with_track(noisy(1, seed=4), 20.0, 0.3))
        assert m(x).max() < signal - 2.0


def torch_route(m, x: torch.Tensor) -> torch.Tensor:
    """The model's torch code, normalisation and tree."""
    with torch.no_grad(), torch_code():
        return m(x)


def test_eager_cpu_inference_takes_the_numpy_route_and_agrees():
    m = build_model("dedoppler").eval()
    x = with_track(noisy(40, seed=5), 30.0, 0.4)
    assert eager_cpu(x) and not eager_cpu(x.clone().requires_grad_())
    with torch_code():
        assert not eager_cpu(x)
    with torch.inference_mode():
        fast = m(x)
    assert fast.dtype == torch.float32 and fast.shape == (40,)
    assert torch.allclose(fast, torch_route(m, x), rtol=1e-5, atol=1e-5)
    z = m.preprocess(x)[:, 0]  # the prior's route: same bits either way
    with torch_code():
        ref = track_snr(z, (1, 2))
    assert torch.equal(track_snr(z, (1, 2)), ref)


def test_non_finite_crops_fall_back_to_torch():
    m = build_model("dedoppler").eval()
    x = noisy(3, seed=6)
    x[1, 0, 3, 4] = float("nan")
    x[2, 0, 5, 6] = float("inf")
    with torch.no_grad():
        got = m(x)
    assert torch.allclose(got, torch_route(m, x), equal_nan=True)


@pytest.mark.filterwarnings("ignore")  # the tracer's deprecation and shape notes
def test_tracing_records_the_torch_code():
    """jit.trace must see torch ops (a numpy call would be frozen into a constant of the example)."""
    m = build_model("dedoppler").eval()
    with torch.no_grad():
        traced = torch.jit.trace(m, noisy(4, seed=7), check_trace=False)
        other = with_track(noisy(4, seed=8), 12.0, -0.6)
        assert torch.allclose(traced(other), torch_route(m, other), rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings("ignore")  # the TorchScript exporter's deprecation and shape notes
def test_onnx_export_of_the_statistic_is_the_torch_graph():
    ort = pytest.importorskip("onnxruntime")

    class Stat(torch.nn.Module):  # what the CNNs' ONNX graphs hold: the statistic on normalised crops
        def forward(self, z):
            return track_snr(z[:, 0], (1, 2))

    m = build_model("dedoppler").eval()
    with torch.no_grad():
        z = m.preprocess(noisy(6, seed=9))
        buf = io.BytesIO()
        torch.onnx.export(Stat(), (z[:2],), buf, dynamo=False, input_names=["z"],
                          dynamic_axes={"z": {0: "b"}})
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"z": z.numpy()})[0]
    assert np.allclose(got, Stat()(z).numpy(), rtol=1e-5, atol=1e-5)
