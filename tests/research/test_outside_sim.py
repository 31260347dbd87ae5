"""The independent simulator writes archives cropray reads, balanced, reproducible, with SNRs as stated;
the quality-table pipeline runs end to end at tiny sizes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from research.outside_sim import signals as S
from research.outside_sim import spectrometer as SP
from research.outside_sim.sets import SETS, generate, write_set

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_cli_output_is_read_by_cropray_inspect_and_balanced(tmp_path):
    out = tmp_path / "labels"
    p = _cli("-m", "research.outside_sim", str(out), "--kind", "labels", "--n", "40", "--seed", "3", cwd=REPO)
    assert p.returncode == 0, p.stderr
    p = _cli("-m", "cropray", "inspect", str(out), "--json", cwd=REPO)
    assert p.returncode == 0, p.stdout + p.stderr
    s = json.loads(p.stdout)
    assert (s["rows"], s["invalid_rows"], s["duplicate_ids"]) == (40, 0, 0)
    assert s["crop"] == ["64x64 float32 (fixed_shape_tensor)"]
    assert s["labels"] == {"0": 20, "1": 20}  # exactly balanced
    assert 5.0 <= min(s["snr_range"]) <= max(s["snr_range"]) <= 60.0


def test_cli_refuses_bad_arguments(tmp_path):
    p = _cli("-m", "research.outside_sim", str(tmp_path / "x"), "--kind", "labels", "--n", "0", cwd=REPO)
    assert p.returncode == 2 and "--n must be >= 1" in p.stderr
    p = _cli("-m", "research.outside_sim", str(tmp_path / "x"), "--kind", "sky", "--n", "4", cwd=REPO)
    assert p.returncode == 2 and "invalid choice" in p.stderr


def test_rows_reproducible_by_seed_and_independent_of_n():
    a, b = generate("fresh", 6, seed=7), generate("fresh", 6, seed=7)
    np.testing.assert_array_equal(a["crops"], b["crops"])
    head = generate("fresh", 3, seed=7)
    np.testing.assert_array_equal(head["crops"], a["crops"][:3])  # row i is the same whatever N
    tail = generate("fresh", 2, seed=7, start=4)
    np.testing.assert_array_equal(tail["crops"], a["crops"][4:])
    assert not np.array_equal(generate("fresh", 6, seed=8)["crops"], a["crops"])
    assert not np.array_equal(generate("faint", 6, seed=7)["crops"], a["crops"])  # sets do not share crops


def test_faint_snrs_in_range_and_negatives_have_none():
    g = generate("faint", 60, seed=1)
    pos = g["label"] == 1
    assert pos.sum() == 30
    assert np.all((g["snr"][pos] >= 4.0) & (g["snr"][pos] <= 12.0))
    assert np.all(np.isnan(g["snr"][~pos]))
    assert np.all(np.isfinite(g["crops"])) and np.all(g["crops"] >= 0)


def test_curved_set_holds_only_curved_wandering_wobbling_tracks():
    g = generate("curved", 40, seed=2)
    tracks = {t for t, lab in zip(g["track"], g["label"], strict=True) if lab}
    assert tracks <= set(SETS["curved"].tracks) and "straight" not in tracks


def test_archive_is_unlabelled(tmp_path):
    write_set(tmp_path, "archive", 8, seed=1)
    t = pq.read_table(tmp_path)
    assert t.num_rows == 8 and "label" not in t.column_names and "snr" not in t.column_names


def test_matched_snr_of_a_constant_track_is_the_integrated_snr():
    # One channel, T rows, per-pixel excess A: the track sum T*A against the sum's noise std sqrt(T)*sigma.
    T, A, sigma = 64, 0.5, 0.25
    expected = np.zeros((T, 64))
    expected[:, 10] = A
    assert S.matched_snr(expected, sigma) == pytest.approx(T * A / (np.sqrt(T) * sigma))


def test_injected_tone_reaches_its_snr_on_the_noise():
    # A bin-centred tone through the rectangular window, K spectra per row: summing the crop along its
    # channel, the excess over the noise mean, in units of the sum's noise std, is the stated SNR.
    rng = np.random.default_rng(0)
    T, K, W, snr, got = 64, 4, 64, 30.0, []
    for _ in range(40):
        v, e = S.tone(rng, np.full((T, K), 20.0), np.ones(T), "rect", W)
        a = snr / S.matched_snr(e, SP.noise_sigma(K))
        power = SP.windowed_power(SP.noise_voltages(rng, T, K, W) + np.sqrt(a) * v, "rect", W)
        got.append((power[:, 20].sum() - T) / (np.sqrt(T) * SP.noise_sigma(K)))
    assert np.mean(got) == pytest.approx(snr, rel=0.05)


def test_noise_has_unit_mean_and_window_correlates_neighbours():
    rng = np.random.default_rng(1)
    p = SP.windowed_power(SP.noise_voltages(rng, 2000, 1, 64), "hann", 64)
    assert p.mean() == pytest.approx(1.0, rel=0.02)
    assert p.std() == pytest.approx(SP.noise_sigma(1), rel=0.05)  # one spectrum: exponential
    r = np.corrcoef(p[:, 10], p[:, 11])[0, 1]
    assert r == pytest.approx(4 / 9, abs=0.05)  # Hann: |rho|^2 = (0.25 / 0.375)^2 between neighbours
    q = SP.windowed_power(SP.noise_voltages(rng, 2000, 1, 64), "rect", 64)
    assert abs(np.corrcoef(q[:, 10], q[:, 11])[0, 1]) < 0.06


@pytest.mark.slow
def test_quality_table_smoke(tmp_path):
    p = _cli("research/quality_table.py", "--work", str(tmp_path), "--smoke-test", cwd=REPO)
    assert p.returncode == 0, p.stdout + p.stderr
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert {r["mode"] for r in rows} == {"physics", "auto", "archive"}
    for r in rows:
        assert 0.0 <= r["auc"] <= 1.0 and r["auc_lo"] <= r["auc"] <= r["auc_hi"]
        assert r["faint_auc"] is not None and r["curved_auc"] is not None
    assert "| smoke | 26 | shallow_cnn + --archive |" in p.stdout
