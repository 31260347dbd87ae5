"""Track morphologies of the generator: each kind renders the track it says, deterministically per seed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cropray.cli import main
from cropray.errors import ConfigError
from cropray.synth import BLOCK, SynthConfig, generate
from cropray.synth.kinds import apply_kinds, parse_kinds

T = F = 64


def _cfg(track: str, **kw) -> SynthConfig:
    # bright, clean signals on every crop: the argmax of each row is the track
    return SynthConfig(positive_fraction=1.0, track_weights={track: 1.0}, snr_range=(400.0, 800.0),
                       rfi_on_positive=0.0, bandpass_feature_prob=0.0, dof_range=(32.0, 64.0),
                       profile_weights={"gaussian": 1.0}, envelope_weights={"constant": 1.0}, **kw)


def _fit_rms(y: np.ndarray, deg: int) -> np.ndarray:
    """RMS residual of a least-squares polynomial of degree deg along rows, (n, T) -> (n,)."""
    t = np.arange(y.shape[1])
    coef = np.polynomial.polynomial.polyfit(t, y.T, deg)  # (deg + 1, n)
    fit = np.polynomial.polynomial.polyval(t, coef)  # (n, T)
    return np.sqrt(((y - fit) ** 2).mean(axis=1))


def _inside(b) -> np.ndarray:
    """Crops whose track stays >= 3 channels from both edges in every row."""
    c = b.track_centre
    return ((c > 3) & (c < F - 4)).all(axis=1)


@pytest.mark.parametrize("track", ["none", "straight", "curved", "wobble", "wander"])
def test_pixels_follow_the_recorded_track(track):
    b = generate(120, _cfg(track), seed=11)
    keep = _inside(b)
    assert keep.sum() >= 30
    x = b.crops[keep] / np.median(b.crops[keep], axis=2, keepdims=True)  # (n, T, F) row-normalised
    peak = x.argmax(axis=2)  # (n, T) brightest channel per row
    err = np.abs(peak - b.track_centre[keep])
    assert np.median(err) <= 0.5 and (err <= 1.5).mean() > 0.97
    assert set(b.kind) == {"narrowband" if track == "none" else "narrowband_drift" if track == "straight"
                           else f"narrowband_{track}"}


def test_each_track_has_its_shape():
    rms = {}
    for track in ("none", "straight", "curved", "wobble", "wander"):
        c = generate(200, _cfg(track), seed=5).track_centre.astype(np.float64)  # (n, T)
        rms[track] = {d: _fit_rms(c, d) for d in (0, 1, 2)}
    assert (rms["none"][0] < 1e-4).all()  # one channel throughout
    assert (rms["straight"][1] < 1e-4).all() and np.median(rms["straight"][0]) > 1  # a line, not a constant
    # curved: a quadratic fits exactly, a line leaves > 0.5 channel RMS for nearly every track
    assert (rms["curved"][2] < 1e-3).all() and (rms["curved"][1] > 0.5).mean() > 0.95
    # wobble: periodic, so neither a line nor a parabola captures it
    assert (rms["wobble"][1] > 0.5).mean() > 0.9 and (rms["wobble"][2] > 0.3).mean() > 0.8
    # wander: a random walk, not a straight line, and its steps are not constant
    assert (rms["wander"][1] > 0.3).mean() > 0.9
    steps = np.diff(generate(200, _cfg("wander"), seed=5).track_centre, axis=1)
    assert (steps.std(axis=1) > 0.2).all()


def test_morphology_streams_are_deterministic_and_chunk_independent():
    cfg = apply_kinds(SynthConfig(), ["all"])
    a = generate(BLOCK + 100, cfg, seed=3)
    part = generate(200, cfg, seed=3, start=BLOCK - 100)
    np.testing.assert_array_equal(part.crops, a.crops[BLOCK - 100:BLOCK + 100])
    np.testing.assert_array_equal(part.track_centre, a.track_centre[BLOCK - 100:BLOCK + 100])
    kinds = {k.split("+")[0] for k in a.kind[a.label == 1]}
    assert kinds == {"narrowband", "narrowband_drift", "narrowband_curved", "narrowband_wobble", "narrowband_wander"}
    assert not np.array_equal(generate(50, cfg, seed=4).crops, a.crops[:50])
    assert np.isnan(a.track_centre[a.label == 0]).all()


def test_default_config_keeps_the_original_two_tracks():
    b = generate(400, seed=2)
    pos = b.label == 1
    assert {k.split("+")[0] for k in b.kind[pos]} == {"narrowband", "narrowband_drift"}
    assert (_fit_rms(b.track_centre[pos].astype(np.float64), 1) < 1e-3).all()  # straight lines only
    drift = np.diff(b.track_centre[pos], axis=1).mean(axis=1)
    np.testing.assert_allclose(drift, b.drift_rate[pos], atol=1e-4)


def test_kinds_restrict_their_groups_only():
    cfg = apply_kinds(SynthConfig(), parse_kinds("curved,wander,pulsed"))
    assert cfg.track_weights == {"curved": 1.0, "wander": 1.0}
    assert cfg.envelope_weights == {"pulsed": 0.3}
    assert cfg.profile_weights == SynthConfig().profile_weights  # group not named: unchanged
    b = generate(300, cfg, seed=1)
    pos = b.label == 1
    assert {k.split("+")[0] for k in b.kind[pos]} == {"narrowband_curved", "narrowband_wander"}
    assert set(b.envelope[pos]) == {"pulsed"}
    with pytest.raises(ConfigError, match="unknown kind.*zigzag.*valid: all, none, straight"):
        parse_kinds("curved,zigzag")
    with pytest.raises(ConfigError, match="track_weights"):
        SynthConfig(track_weights={"spiral": 1.0})


def test_cli_kinds(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "a"), "--n", "200", "--labeled", "--kinds", "wobble,noise"]) == 0
    d = pd.read_parquet(tmp_path / "a")
    assert set(d.kind) <= {"wobble", "noise", "narrowband_wobble", "narrowband_wobble+rfi"}
    assert set(d.kind) >= {"noise", "narrowband_wobble"}
    with pytest.raises(SystemExit) as e:
        main(["synth", str(tmp_path / "b"), "--n", "10", "--kinds", "spiral"])
    assert e.value.code == 2 and "--kinds" in capsys.readouterr().err and not (tmp_path / "b").exists()
