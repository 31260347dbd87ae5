"""physics_np: the Taylor tree against a brute-force straight-track search, and numpy against torch.

The brute force walks every track explicitly (start, drift, width, sign) along Taylor's staircase
c_d(r), the track the tree defines (taylor.py). Crops of small integers make every sum exact in any
order, so tree and brute force must agree bit for bit.
"""

from __future__ import annotations

import itertools
import math
import threading

import numpy as np
import pytest
import torch

from cropray.models import build_model
from cropray.models import physics_np as P
from cropray.models.preprocess import RobustNorm, fast_asinh
from cropray.models.taylor import taylor_tree, torch_code, track_snr
from cropray.synth import generate


def staircase(n: int, d: int) -> list[int]:
    """Taylor's track of drift d over n rows (n a power of two): first half drift d//2, second half
    d - d//2 channels further on."""
    if n == 1:
        return [0]
    half = staircase(n // 2, d // 2)
    return half + [d - d // 2 + c for c in half]


def brute_sums(z: np.ndarray) -> np.ndarray:
    """(N, T2, W) -> (N, T2, W) sum over rows r of z[:, r, f + c_d(r)], zero past the right edge."""
    n, t2, w = z.shape
    out = np.zeros_like(z)
    for d in range(t2):
        path = staircase(t2, d)
        for f in range(w):
            for r in range(t2):
                if f + path[r] < w:
                    out[:, d, f] += z[:, r, f + path[r]]
    return out


def brute_track_snr(z: np.ndarray, widths) -> np.ndarray:
    """(B, T, W) -> (B,) max over every straight track of sum / sqrt(T * k), walked one by one.

    A track: drift d in [-(T2-1), T2-1] channels over T2 = T rounded up to a power of two rows, start
    channel f in the first row from T2/4 channels outside the crop (left edge for positive drifts,
    right edge for negative), width k (channels f .. f+k-1, or f .. f-k+1 going right to left);
    row r is at f + sign * (c_|d|(r) + j). Pixels outside the crop count as zero."""
    b, t, w = z.shape
    t2 = 1 << max(0, math.ceil(math.log2(t)))
    best = np.full(b, -np.inf)
    for sign, d, k in itertools.product((1, -1), range(t2), widths):
        path = staircase(t2, d)
        for f0 in range(-(t2 // 4), w):
            f = f0 if sign > 0 else w - 1 - f0  # negative drifts start from the right
            total = np.zeros(b)
            for r in range(t):
                for j in range(k):
                    c = f + sign * (path[r] + j)
                    if 0 <= c < w:
                        total += z[:, r, c]
            best = np.maximum(best, total / math.sqrt(k))
    return best / math.sqrt(t)


def small_ints(shape, seed):
    return np.random.default_rng(seed).integers(-8, 9, shape).astype(np.float32)


def test_staircase_is_a_straight_line_within_one_channel():
    for n in (8, 16):
        for d in range(n):
            p = staircase(n, d)
            assert p[0] == 0 and p[-1] == d
            assert max(abs(p[r] - d * r / (n - 1)) for r in range(n)) <= 1.0


@pytest.mark.parametrize("shape", [(3, 8, 16), (2, 16, 16), (2, 4, 5), (1, 1, 7)])
def test_tree_equals_brute_force_sums_exactly(shape):
    z = small_ints(shape, seed=sum(shape))
    ref = brute_sums(z)
    assert np.array_equal(P.taylor_tree_np(z), ref)
    assert np.array_equal(taylor_tree(torch.from_numpy(z)).numpy(), ref)


@pytest.mark.parametrize("shape,widths", [((3, 8, 16), (1, 2)), ((2, 16, 16), (1, 3)), ((2, 12, 16), (2,)),
                                          ((2, 5, 9), (1, 2, 4)), ((1, 1, 6), (1,))])
def test_track_snr_equals_brute_force_search(shape, widths):
    z = small_ints(shape, seed=7 * sum(shape))
    ref = brute_track_snr(z, widths)
    got = P.track_snr_np(z, widths)
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=0)
    with torch_code():
        torch_ref = track_snr(torch.from_numpy(z), widths).numpy()
    np.testing.assert_allclose(torch_ref, ref, rtol=1e-6, atol=0)


@pytest.mark.parametrize("sign,d,f0", [(1, 9, 2), (-1, 9, 13), (1, 12, -4), (-1, 7, 18), (1, 15, 10), (-1, 3, 1)])
def test_planted_tracks_through_the_edges(sign, d, f0):
    """A track of ones along the staircase, entering through a side edge (start up to T2/4 = 4 channels
    outside) or leaving through the far one: the search finds its in-crop part, no more and no less."""
    z = np.zeros((1, 16, 16), np.float32)
    for r, c in enumerate(staircase(16, d)):
        if 0 <= f0 + sign * c < 16:
            z[0, r, f0 + sign * c] = 1.0
    expected = z.sum() / 4  # in-crop pixels / sqrt(T * 1)
    assert brute_track_snr(z, (1,))[0] == pytest.approx(expected)
    assert P.track_snr_np(z, (1,))[0] == pytest.approx(expected)
    with torch_code():
        assert track_snr(torch.from_numpy(z), (1,))[0].item() == pytest.approx(expected)


def test_tree_and_track_snr_bit_identical_to_torch():
    z = np.random.default_rng(1).standard_normal((6, 64, 64)).astype(np.float32)
    assert np.array_equal(P.taylor_tree_np(z), taylor_tree(torch.from_numpy(z)).numpy())
    for widths in ((1,), (1, 2), (1, 2, 4), (3, 7)):
        for t in (64, 48, 33):
            zz = np.ascontiguousarray(z[:, :t])
            with torch_code():  # track_snr itself routes eager CPU calls to numpy
                ref = track_snr(torch.from_numpy(zz), widths).numpy()
            assert np.array_equal(P.track_snr_np(zz, widths), ref), (widths, t)


def test_median_mad_exact_against_torch():
    rng = np.random.default_rng(2)
    for n in list(range(1, 40)) + [1365, 1366]:
        sub = rng.integers(-3, 4, (5, n)).astype(np.float32) * rng.choice([1.0, 0.1], (5, 1)).astype(np.float32)
        sub[0] = rng.standard_normal(n)  # ties in most rows, none in the first
        med, mad = P.median_mad(sub)
        t = torch.from_numpy(sub)
        tmed = t.median(dim=1, keepdim=True).values
        tmad = (t - tmed).abs().median(dim=1, keepdim=True).values
        assert np.array_equal(med, tmed.numpy()) and np.array_equal(mad, tmad.numpy()), n


def test_asinh_matches_torch_including_extremes():
    z = np.concatenate([np.linspace(-30, 30, 20001), np.logspace(-20, 38, 400), -np.logspace(-20, 38, 400),
                        [0.0, -0.0, 1e9, 1.0001e9]]).astype(np.float32)
    ref = fast_asinh(torch.from_numpy(z)).numpy()
    got = P.asinh_np(z.copy())
    assert np.all(np.abs(got - ref) <= 3e-7 * np.maximum(1.0, np.abs(ref)))
    assert np.array_equal(np.signbit(got), np.signbit(ref))


def edge_crops() -> dict[str, np.ndarray]:
    """(B, 1, H, W) raw crops a scorer meets besides noise."""
    rng = np.random.default_rng(3)
    noise = rng.exponential(1.0, (4, 1, 64, 64)).astype(np.float32)
    huge = noise.copy()
    huge[:, 0, 10, 20] = 1e30  # a single pixel 30 decades up
    huge[1] *= 1e-20
    uint8 = np.clip(rng.normal(3, 4, (4, 1, 64, 64)).round(), 0, 255).astype(np.float32)  # mostly 0..10
    return {"constant": np.full((3, 1, 64, 64), 7.0, np.float32), "zeros": np.zeros((2, 1, 64, 64), np.float32),
            "huge range": huge, "uint8-like": uint8, "T=48": noise[:, :, :48], "T=20, W=33": noise[:, :, :20, :33],
            "8x16": noise[:, :, :8, :16], "W=9 < window": noise[:, :, :, :9], "negative": noise - 2.0,
            "1x8": noise[:, :, :1, :8], "3x3": noise[:, :, :3, :3], "64x1": noise[:, :, :, :1], "2x2": noise[:, :, :2, :2]}


NORMS = [dict(flatten=f, flatten_window=w, row_center=r, compress=c) for f, w, r, c in
         itertools.product([True, False], [15], [True, False], ["asinh", "none"])] + [
    dict(flatten=True, flatten_window=5, row_center=True, compress="asinh")]


@pytest.mark.parametrize("norm", NORMS, ids=lambda n: "-".join(str(v) for v in n.values()))
def test_robust_norm_np_matches_robust_norm(norm):
    crops = {"synth": generate(96, seed=11).crops[:, None].astype(np.float32), **edge_crops()}
    m = RobustNorm(**norm)
    for name, x in crops.items():
        ref = m(torch.from_numpy(x)).numpy()
        got = P.robust_norm_np(x, **norm)
        assert got.shape == ref.shape and got.dtype == np.float32
        assert np.all(np.abs(got - ref) <= 1e-5 * np.maximum(1.0, np.abs(ref))), (name, np.abs(got - ref).max())


@pytest.mark.parametrize("hp", [{}, {"widths": [1, 2, 4], "flatten_window": 7},
                                {"widths": [1], "row_center": False, "compress": "none"}, {"flatten": False}])
def test_dedoppler_score_np_matches_the_torch_model(hp):
    """Scores within 1e-5 relative (1e-5 absolute below 1) of the torch model on raw crops."""
    model = build_model("dedoppler", **hp).eval()
    crops = {"synth": generate(200, seed=5).crops[:, None].astype(np.float32), **edge_crops()}
    for name, x in crops.items():
        with torch.no_grad(), torch_code():  # the torch code, normalisation and tree
            ref = model(torch.from_numpy(x)).numpy()
        got = P.dedoppler_score_np(x, model.hparams, chunk=64)
        assert got.shape == (len(x),) and got.dtype == np.float32
        assert np.all(np.abs(got - ref) <= 1e-5 * np.maximum(1.0, np.abs(ref))), (name, np.abs(got - ref).max())


def test_chunking_and_threads_give_the_same_scores():
    x = generate(100, seed=9).crops[:, None].astype(np.float32)
    hp = build_model("dedoppler").hparams
    ref = P.dedoppler_score_np(x, hp, chunk=100)
    assert np.array_equal(P.dedoppler_score_np(x, hp, chunk=7), ref)  # a remainder chunk of 2
    z = P.robust_norm_np(x, **{k: hp[k] for k in ("flatten", "flatten_window", "row_center", "compress")})[:, 0]
    assert np.array_equal(P.track_snr_np(z, hp["widths"], chunk=9), P.track_snr_np(z, hp["widths"], chunk=100))
    assert np.array_equal(P.track_snr_np(z, hp["widths"]), ref)  # normalise, then search = fused
    out = {}

    def work(i):  # plans hold scratch buffers: one set per thread
        out[i] = [P.dedoppler_score_np(x, hp, chunk=16 + i) for _ in range(3)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(np.array_equal(s, ref) for runs in out.values() for s in runs)
    assert np.array_equal(P.dedoppler_score_np(x, hp, chunk=16, threads=2), ref)  # the pool
    assert np.array_equal(P.track_snr_np(z, hp["widths"], chunk=16, threads=3), ref)


def test_bad_shapes_are_refused_with_the_shape():
    hp = build_model("dedoppler").hparams
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\).*\(4, 64, 64\)"):
        P.dedoppler_score_np(np.zeros((4, 64, 64), np.float32), hp)
    with pytest.raises(ValueError, match="power-of-two"):
        P.taylor_tree_np(np.zeros((1, 6, 8), np.float32))
