"""Injection into archive backgrounds: sampling, noise level, signals in raw units, exclusion, bad input."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from cropray.archive import write_archive
from cropray.errors import ConfigError, CroprayError
from cropray.inject import InjectConfig, build_injected, noise_sigma, sample_backgrounds, track_statistic
from cropray.inject.build import UNLABELLED, inject_from_archive
from cropray.synth import SynthConfig, generate

T = F = 64
CLEAN = dict(bandpass_slope_std=0.0, ripple_max=0.0, bandpass_feature_prob=0.0, gain_drift_prob=0.0)


def _archive(path, n, cfg=None, seed=0, files=3, **kw):
    b = generate(n, cfg or SynthConfig(**kw), seed=seed)
    write_archive(path, {"crop_id": np.array([f"a{seed}-{i}" for i in range(n)], dtype=object)}, b.crops, files=files)
    return b


@pytest.fixture(scope="module")
def noise_archive(tmp_path_factory):
    p = tmp_path_factory.mktemp("noise")
    _archive(p, 1500, SynthConfig(positive_fraction=0.0, negative_weights={"noise": 1.0}), seed=4)
    return p


def test_sampling_is_reproducible_spread_and_within_budget(noise_archive):
    a = sample_backgrounds(noise_archive, 400, seed=1)
    b = sample_backgrounds(noise_archive, 400, seed=1)
    c = sample_backgrounds(noise_archive, 400, seed=2)
    assert len(a) == 400 and a.x.shape == (400, 1, T, F) and a.x.dtype == np.float32
    np.testing.assert_array_equal(a.x, b.x)
    assert list(a.crop_id) == list(b.crop_id) and list(a.crop_id) != list(c.crop_id)
    assert len(set(a.crop_id)) == 400 and a.rows_in_archive == 1500 and a.files and not a.failed
    files = {int(i.split("-")[1]) * 3 // 1500 for i in a.crop_id}  # write_archive splits rows evenly
    assert files == {0, 1, 2}  # every file contributes
    assert len(sample_backgrounds(noise_archive, 5000, seed=1)) == 1500  # budget above the archive: all rows
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 64


def test_bad_rows_skipped_and_counted_unreadable_files_named(tmp_path):
    _archive(tmp_path, 300, files=1)
    x = np.ones((4, T * F), np.float32)
    x[1, 5] = np.nan
    crops = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), T * F)
    crops = pa.array([crops[0].as_py(), crops[1].as_py(), None, crops[3].as_py()], type=crops.type)
    pq.write_table(pa.table({"crop_id": ["b0", "b1", "b2", "b3"], "crop": crops}), tmp_path / "bad-rows.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    bg = sample_backgrounds(tmp_path, 1000, seed=0)
    assert len(bg) == 302 and bg.invalid == {"non_finite": 1, "null_crop": 1}
    assert [f for f, _ in bg.failed] == [str(tmp_path / "junk.parquet")]
    assert "not a readable Parquet file" in bg.failed[0][1]
    s = bg.summary()
    assert s["files_failed"][0]["file"].endswith("junk.parquet") and s["invalid_rows"]["null_crop"] == 1


def test_shape_mismatch_names_both_shapes(tmp_path):
    _archive(tmp_path, 50, SynthConfig(time_bins=32, freq_channels=48), files=1)
    with pytest.raises(CroprayError, match=r"archive crops are 32x48 .* labelled crops are 64x64"):
        sample_backgrounds(tmp_path, 10, expect_shape=(64, 64))


def test_noise_sigma_matches_the_true_noise_at_any_level():
    b = generate(300, SynthConfig(positive_fraction=0.0, negative_weights={"noise": 1.0}, dof_range=(4.0, 64.0),
                                  **CLEAN), seed=2)
    s = noise_sigma(b.crops)  # (300, F)
    ratio = s.mean(axis=1) / b.noise_std
    assert abs(np.median(ratio) - 1) < 0.05 and np.quantile(np.abs(ratio - 1), 0.9) < 0.15
    np.testing.assert_allclose(noise_sigma(b.crops * 1e4), s * 1e4, rtol=1e-4)  # raw units: scales with the data
    # a bandpass multiplies each channel's noise: sigma follows it
    g = np.linspace(0.2, 3.0, F, dtype=np.float32)
    ratio_f = noise_sigma(b.crops * g) / s
    assert np.median(np.abs(ratio_f / g - 1)) < 0.1


def test_injected_signals_have_their_snr_in_raw_units(noise_archive):
    bg = sample_backgrounds(noise_archive, 800, seed=0)
    bg.x *= np.float32(1e3)  # another instrument's units: injection must follow them
    neg = generate(100, SynthConfig(positive_fraction=0.0), seed=8).crops[:, None]
    cfg = InjectConfig(archive_crops=800, seed=3, snr_range=(1.0, 60.0), min_backgrounds=10)
    s = build_injected(bg, neg, cfg)
    assert s.summary["injected"] == (s.y == 1).sum() and abs(s.y.mean() - 0.5) < 0.01
    assert set(s.summary["injected_tracks"]) == {"none", "straight", "curved", "wobble", "wander"}
    stat = track_statistic(s.x)
    plain = stat[s.y == 0]
    for lo, hi, auc_lo, auc_hi in ((20, 60, 0.97, 1.0), (1, 2.5, 0.0, 0.7)):
        pos = stat[(s.y == 1) & (s.snr >= lo) & (s.snr < hi)]
        auc = roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(plain))], np.r_[pos, plain])
        assert auc_lo <= auc <= auc_hi, (lo, hi, auc)
    s2 = build_injected(bg, neg, cfg)
    np.testing.assert_array_equal(s.x, s2.x)  # reproducible by seed


def test_exclusion_drops_backgrounds_that_already_hold_signals(tmp_path):
    cfg = SynthConfig(positive_fraction=0.5, snr_range=(30.0, 100.0))
    truth = _archive(tmp_path, 500, cfg, seed=5, files=2).label.astype(int)
    lab = generate(200, SynthConfig(), seed=6)
    s = inject_from_archive(tmp_path, lab.crops[:, None], lab.label, InjectConfig(archive_crops=500, seed=0,
                                                                                 min_backgrounds=10))
    kept = np.zeros(500, bool)
    kept[[int(i.split("-")[1]) for i in s.source_id]] = True
    assert s.summary["excluded"] == (~kept).sum() and s.summary["usable"] == kept.sum()
    assert (~kept[truth == 1]).mean() > 0.95  # bright archive signals do not become negatives
    assert (~kept[truth == 0]).mean() < 0.05  # and the archive's negatives mostly stay
    assert f"0.99 quantile on {(lab.label == 0).sum()} labelled" in s.summary["excluded_rule"]  # says the rule


def test_too_few_backgrounds_warn_with_the_count(tmp_path):
    _archive(tmp_path, 40, SynthConfig(positive_fraction=0.0), files=1)
    lab = generate(100, SynthConfig(), seed=6)
    s = inject_from_archive(tmp_path, lab.crops[:, None], lab.label, InjectConfig(archive_crops=1000))
    assert len(s) <= 40 and any(f"only {len(s):,} usable background crops" in w for w in s.warnings)


def test_config_is_validated():
    with pytest.raises(ConfigError, match="archive_crops"):
        InjectConfig(archive_crops=0)
    with pytest.raises(ConfigError, match="unknown kind"):
        InjectConfig(kinds="spiral")
    with pytest.raises(ConfigError, match="unknown key.*valid keys"):
        InjectConfig.from_dict({"budget": 3})
    assert InjectConfig.from_dict(InjectConfig().to_dict()) == InjectConfig()


def test_paired_mode_uses_every_background_plain_and_injected(noise_archive):
    bg = sample_backgrounds(noise_archive, 300, seed=0)
    neg = generate(100, SynthConfig(positive_fraction=0.0), seed=8).crops[:, None]
    s = build_injected(bg, neg, InjectConfig(archive_crops=300, seed=3, plain="paired", min_backgrounds=10))
    u = s.summary["usable"]
    assert len(s) == 2 * u and s.summary["injected"] == u and s.summary["plain_as"] == "paired"
    assert (s.y[:u] == UNLABELLED).all() and (s.y[u:] == 1).all()  # no plain background is a negative
    np.testing.assert_array_equal(s.source_id[:u], s.source_id[u:])  # the k-th pair shares one background
    assert np.isnan(s.snr[:u]).all() and np.isfinite(s.snr[u:]).all()
    added = s.x[u:] - s.x[:u]  # the injected copy is its plain copy plus a signal, nothing else
    assert (added >= -1e-3 * np.abs(s.x[:u]).max()).all() and (added.reshape(u, -1).max(axis=1) > 0).all()
    pu = build_injected(bg, neg, InjectConfig(archive_crops=300, seed=3, plain="pu", min_backgrounds=10))
    assert set(np.unique(pu.y)) == {UNLABELLED, 1} and len(pu) == u


def test_plain_mode_is_validated():
    with pytest.raises(ConfigError, match="plain"):
        InjectConfig(plain="ignore")
    with pytest.raises(ConfigError, match="pu_prior"):
        InjectConfig(pu_prior=1.5)
