"""The synthetic generator: determinism, the SNR definition, and that its labels mean what they say."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score as auc

from cropray.archive import read_labeled
from cropray.errors import ConfigError, CroprayError
from cropray.synth import BLOCK, NEGATIVE_KINDS, SynthConfig, generate, synth_archive
from cropray.synth.components import envelopes, narrowband

T = F = 64


def track_statistic(x: np.ndarray, max_drift: float = 1.0) -> np.ndarray:
    """Max over drift rates and channels of a robust de-drifted time sum, (n, T, F) -> (n,).

    Divide each row by its median (gain drift, broadband rows), divide by a 9-channel running median of
    the time-median spectrum (bandpass, steps, bumps; a line a few channels wide survives), scale by the
    MAD, clip at 5 (isolated bright pixels and blobs), then shift-and-sum along each trial drift.
    """
    n, T_, F_ = x.shape
    x = x / np.median(x, axis=2, keepdims=True)
    spec = np.median(x, axis=1)  # (n, F)
    win = np.lib.stride_tricks.sliding_window_view(np.pad(spec, ((0, 0), (4, 4)), mode="edge"), 9, axis=1)
    z = x / np.median(win, axis=2)[:, None, :] - 1  # (n, T, F) ~ zero-mean noise
    mad = np.median(np.abs(z - np.median(z, axis=(1, 2), keepdims=True)), axis=(1, 2))
    z = np.minimum(z / (1.4826 * mad)[:, None, None], 5.0)
    zp = np.pad(z, ((0, 0), (0, 0), (F_, F_))).reshape(n, T_ * 3 * F_)  # zero channels either side
    t = np.arange(T_)[:, None]
    best = np.full(n, -np.inf)
    for d in np.arange(-max_drift, max_drift + 1e-9, 2.0 / T_):  # a track moves <= 1 channel per trial step
        idx = (t * 3 * F_ + F_ + np.arange(F_)[None, :] + np.rint(d * t).astype(int)).ravel()
        best = np.maximum(best, zp[:, idx].reshape(n, T_, F_).sum(axis=1).max(axis=1) / np.sqrt(T_))
    return best


def test_shapes_dtypes_and_columns():
    b = generate(300, seed=1)
    assert b.crops.shape == (300, T, F) and b.crops.dtype == np.float32
    assert np.isfinite(b.crops).all() and (b.crops > 0).all()
    assert b.label.dtype == np.int8 and set(np.unique(b.label)) == {0, 1}
    pos = b.label == 1
    assert np.isnan(b.snr[~pos]).all() and (b.snr[pos] >= 5).all() and (b.snr[pos] <= 100).all()
    assert all(k.startswith("narrowband") for k in b.kind[pos])
    assert set(b.kind[~pos]) <= set(NEGATIVE_KINDS)
    assert (b.drift_rate[~pos] == 0).all() and (np.abs(b.drift_rate[pos]) <= 0.9).all()
    assert len(b) == 300 and generate(0).crops.shape == (0, T, F)


def test_deterministic_for_a_seed_and_independent_of_chunking():
    a = generate(BLOCK + 200, seed=7)
    part = generate(300, seed=7, start=BLOCK - 100)  # straddles a block boundary: regenerates both blocks
    np.testing.assert_array_equal(part.crops, a.crops[BLOCK - 100 : BLOCK + 200])
    for k in ("label", "snr", "kind", "drift_rate", "t_offset_s"):
        np.testing.assert_array_equal(getattr(part, k), getattr(a, k)[BLOCK - 100 : BLOCK + 200])
    assert not np.array_equal(generate(50, seed=8).crops, a.crops[:50])


def test_snr_definition_on_noiseless_signals():
    # drift 0 or 1 channel/row keeps the centre on a channel: the de-drifted time sum at the centre is
    # exactly T * amplitude = snr * sigma * sqrt(T), whatever the envelope (mean 1 by construction).
    rng = np.random.default_rng(0)
    snr, sigma = np.array([10.0, 50.0, 7.0, 80.0]), np.array([0.3, 2.0, 1e3, 1.0])
    amp = snr * sigma / np.sqrt(T)
    env = envelopes(rng, np.array([0, 1, 2, 1]), T)
    np.testing.assert_allclose(env.mean(axis=1), 1.0, rtol=1e-12)
    assert env[2].min() == 0.0 and env[1].std() > 0.1  # pulsed switches off, scintillation modulates
    drift = np.array([0.0, 0.0, 1.0, -0.5])
    f0 = np.array([20.0, 31.0, 0.0, 50.0])
    s = narrowband(amp, f0, drift, np.array([2.0, 3.0, 1.0, 2.0]), np.array([0, 1, 0, 2]), env, F)
    for i in range(3):
        track = s[i, np.arange(T), (f0[i] + drift[i] * np.arange(T)).astype(int)]
        assert track.sum() == pytest.approx(snr[i] * sigma[i] * np.sqrt(T), rel=1e-5)
    # boxcar of width 2 at half-integer centres: each row holds exactly width * amplitude * envelope
    np.testing.assert_allclose(s[3].sum(axis=1), 2.0 * amp[3] * env[3], rtol=1e-5)


def test_snr_definition_holds_in_generated_crops():
    # Flat gain, constant non-drifting boxcar lines of width 1: the line lands on one or two channels,
    # and the time-summed excess over the noise mean, in units of sigma*sqrt(T), estimates snr (+-1.4).
    cfg = SynthConfig(
        positive_fraction=1.0, snr_range=(20.0, 100.0), drifting_fraction=0.0, width_range=(1.0, 1.0),
        profile_weights={"boxcar": 1}, envelope_weights={"constant": 1}, bandpass_slope_std=0.0,
        ripple_max=0.0, bandpass_feature_prob=0.0, gain_drift_prob=0.0, rfi_on_positive=0.0,
    )
    b = generate(400, cfg, seed=3)
    excess = b.crops.sum(axis=1) - T * b.noise_level[:, None]  # (n, F)
    pair = excess[:, :-1] + excess[:, 1:]
    est = pair.max(axis=1) / (b.noise_std * np.sqrt(T))
    ratio = est / b.snr
    assert abs(np.median(ratio) - 1) < 0.03, np.median(ratio)
    assert np.corrcoef(est, b.snr)[0, 1] > 0.97


def test_noise_levels_span_five_decades_in_both_classes():
    b = generate(1000, seed=2)
    level = np.median(b.crops, axis=(1, 2))
    for cls in (0, 1):
        lv = np.log10(level[b.label == cls])
        assert lv.max() - lv.min() >= 5.0
    assert np.log10(b.noise_level.max() / b.noise_level.min()) >= 5.0


def test_classes_separable_by_a_physical_statistic_not_by_brightness():
    b = generate(1024, SynthConfig(snr_range=(30.0, 100.0)), seed=11)
    y = b.label.astype(int)
    assert 0.4 < y.mean() < 0.6
    assert auc(y, track_statistic(b.crops)) > 0.95
    # overall brightness: raw and relative to the crop's own level, and spread
    level = np.median(b.crops, axis=(1, 2))
    for name, s in (
        ("mean power", b.crops.mean(axis=(1, 2))),
        ("std", b.crops.std(axis=(1, 2))),
        ("mean / median", b.crops.mean(axis=(1, 2)) / level),
        ("max / median", b.crops.max(axis=(1, 2)) / level),
    ):
        assert 0.35 < auc(y, s) < 0.65, name


def test_low_snr_is_harder_than_high_snr():
    b = generate(512, SynthConfig(snr_range=(3.0, 8.0)), seed=12)
    a_low = auc(b.label.astype(int), track_statistic(b.crops))
    assert 0.55 < a_low < 0.95  # the statistic sees something, far from perfectly


def test_config_validation_names_the_field():
    with pytest.raises(ConfigError, match="positive_fraction"):
        SynthConfig(positive_fraction=1.5)
    with pytest.raises(ConfigError, match="snr_range"):
        SynthConfig(snr_range=(10.0, 5.0))
    with pytest.raises(ConfigError, match="negative_weights"):
        SynthConfig(negative_weights={"aliens": 1.0})
    with pytest.raises(ConfigError, match="valid keys"):
        SynthConfig.from_dict({"nope": 1})
    cfg = SynthConfig(snr_range=(3, 30))
    assert SynthConfig.from_dict(cfg.to_dict()) == cfg


def test_synth_archive_round_trip_and_file_count_independence(tmp_path):
    s = synth_archive(tmp_path / "a", 300, files=3, labeled=True, seed=5)
    assert s["files"] == 3 and s["rows"] == 300 and s["bytes"] > 0
    ls = read_labeled(tmp_path / "a")
    ref = generate(300, seed=5)
    np.testing.assert_array_equal(ls.x[:, 0], ref.crops)
    np.testing.assert_array_equal(ls.y, ref.label)
    np.testing.assert_array_equal(ls.snr, ref.snr)
    assert s["positives"] == int(ref.label.sum()) and len(set(ls.crop_id)) == 300
    synth_archive(tmp_path / "b", 300, files=1, labeled=True, seed=5)
    np.testing.assert_array_equal(read_labeled(tmp_path / "b").x, ls.x)


@pytest.mark.parametrize("dtype", ["float16", "uint8", "uint16"])
def test_synth_archive_storage_dtypes(tmp_path, dtype):
    import pyarrow.parquet as pq

    synth_archive(tmp_path, 200, files=2, dtype=dtype, seed=1)
    t = pq.read_table(tmp_path)
    assert str(t.schema.field("crop").type.value_type) == {"float16": "halffloat"}.get(dtype, dtype)
    assert "label" not in t.column_names and "snr" not in t.column_names and "kind" not in t.column_names
    ls = read_labeled(tmp_path, require_label=False)
    assert ls.x.shape == (200, 1, T, F) and np.isfinite(ls.x).all() and not ls.invalid


def test_synth_archive_refuses_a_non_empty_dir_without_overwrite(tmp_path):
    synth_archive(tmp_path, 20, files=2)
    with pytest.raises(CroprayError, match="--overwrite"):
        synth_archive(tmp_path, 20)
    (tmp_path / "notes.txt").write_text("keep me")
    s = synth_archive(tmp_path, 10, files=1, overwrite=True)
    assert s["files"] == 1 and len(list(tmp_path.glob("*.parquet"))) == 1
    assert (tmp_path / "notes.txt").exists()


def test_fit_float16_scales_only_crops_that_would_overflow():
    from cropray.synth.archive import fit_float16

    x = np.ones((2, 4, 4), np.float32)
    x[0, 1, 2] = 3e7  # a bright blob on a loud crop: float16 stops at 65504
    x[1] *= 0.01
    y = fit_float16(x)
    assert y.dtype == np.float16 and np.isfinite(y).all()
    assert y[0].max() <= 2**15 and float(y[0, 1, 2]) / float(y[0, 0, 0]) == pytest.approx(3e7, rel=1e-3)  # ratio kept
    np.testing.assert_array_equal(y[1], x[1].astype(np.float16))  # untouched when it fits
