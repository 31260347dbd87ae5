"""The cascade (cascade.py): the dedoppler statistic rules crops out before the network, by a calibrated cut."""

from __future__ import annotations

import numpy as np
import torch

from cropray.fastpath import build_scorer
from cropray.fastpath.cascade import NORM, WIDTHS, CascadeScorer, build_cascade, calibrate, track_stat
from cropray.models import build_model


def test_track_stat_is_the_dedoppler_baseline_score(fixed_batch):
    x = fixed_batch[:64]
    ref = build_model("dedoppler", widths=list(WIDTHS), **NORM).eval()
    with torch.inference_mode():
        want = ref(torch.from_numpy(x)).numpy()
    got = track_stat(x)
    assert got.shape == (64,) and np.abs(got - want).max() < 1e-3  # numpy medians vs torch's, same crops
    bad = x[:2].copy()
    bad[0, 0, 3, 3] = np.nan
    assert np.isinf(track_stat(bad)[0]) and np.isfinite(track_stat(bad)[1])  # never ruled out


def test_cut_by_rank_bound_and_by_tail_margin():
    rng = np.random.default_rng(0)
    stat = np.concatenate([rng.normal(4, 0.5, 3000), rng.normal(9, 1.5, 2000)])
    flagged = np.r_[np.zeros(3000, bool), np.ones(2000, bool)]
    c = calibrate(stat, flagged, np.r_[np.full(3000, 0.1), np.full(2000, 0.9)], 0.5)
    pos = np.sort(stat[flagged])
    assert c.certified and c.cut == pos[1] and c.flagged_lost == 1  # k = floor(0.001 * 2001) = 2 -> 2nd smallest
    assert c.skip_fraction == np.mean(stat < c.cut) > 0.5 and c.floor == 0.05  # min(threshold, lowest kept) / 2
    few = calibrate(stat[-300:], flagged[-300:], np.full(300, 0.9), 0.5)  # 300 flagged: no rank certifies 0.1%
    assert not few.certified and few.cut < stat[-300:].min() and few.flagged_lost == 0
    assert calibrate(stat, np.zeros(len(stat), bool), stat, 0.5) is None


def test_ruled_out_crops_score_below_the_threshold_and_kept_ones_unchanged(trained_shallow, fixed_batch):
    tm = trained_shallow
    s = build_scorer(tm.model, path="fold_cl", threshold=tm.threshold)
    x = fixed_batch[:128]
    plain = s(x)
    stat = track_stat(x)
    cut = calibrate(stat, plain >= tm.threshold, plain, tm.threshold)
    c = CascadeScorer(s, cut)
    got = c(x)
    kept = stat >= cut.cut
    np.testing.assert_allclose(got[kept], plain[kept], atol=1e-6)  # the network's own scores
    assert (got[~kept] < tm.threshold).all() and (got[~kept] >= 0).all()
    d = c.describe()
    assert d["path"] == "fold_cl+cascade" and d["cascade"]["rows"] == 128
    assert d["cascade"]["skipped"] == int((~kept).sum())
    wrapped, note = build_cascade(s, tm.calibration_crops, tm.threshold)
    assert isinstance(wrapped, CascadeScorer) and note == {}
    assert build_cascade(s, None, tm.threshold)[0] is s
