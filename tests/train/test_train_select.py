"""The paired selection rule and the target-FPR threshold, on hand-made scores (no training)."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from cropray.errors import ConfigError
from cropray.train.jobspec import TrainJob
from cropray.train.select import paired_auc_gain, select
from cropray.train.threshold import HOLD_BACK_MAX, excluded_share, fpr_rule, fpr_threshold, hold_back


def _scores(n=60, seed=0):
    """y (n,) balanced; a weak score (ROC-AUC ~0.75) and a strong one (~0.99) of the same crops."""
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n // 2), np.zeros(n - n // 2)].astype(np.int64)
    noise = rng.normal(size=n)
    return y, y * 1.0 + noise, y * 4.0 + noise  # same noise: the scores are paired, as on the same crops


def test_a_clear_paired_gain_has_a_lower_bound_above_zero():
    y, weak, strong = _scores()
    g = paired_auc_gain(y, strong, weak, seed=0)
    assert g.gain > 0.1 and g.lo > 0 and g.proven and g.lo <= g.gain <= g.hi
    assert g.gain == pytest.approx(roc_auc_score(y, strong) - roc_auc_score(y, weak), abs=1e-12)
    assert paired_auc_gain(y, strong, weak, seed=0) == g  # seeded: the same interval
    back = paired_auc_gain(y, weak, strong, seed=0)  # the other way round: a proven loss
    assert back.hi < 0 and not back.proven


def test_identical_scores_give_an_interval_around_zero_and_physics_ships():
    y, weak, _ = _scores()
    g = paired_auc_gain(y, weak.copy(), weak, seed=1)
    assert g.gain == 0 and g.lo <= 0 <= g.hi and not g.proven
    # a learned candidate equal to physics, or a hair better by noise: physics (index 0) ships
    rng = np.random.default_rng(3)
    jitter = weak + rng.normal(scale=1e-3, size=len(y))
    chosen, recs = select(y, [weak, weak.copy(), jitter], seed=0)
    assert chosen == 0 and recs[0]["vs_baseline"] is None
    assert all(not r["vs_baseline"]["proven"] for r in recs[1:])


def test_select_needs_a_proven_gain_over_the_cheaper_incumbent():
    y, weak, strong = _scores()
    # physics weak, learned A strong, learned B = A (a tie): A ships, the tie goes to the cheaper
    chosen, recs = select(y, [weak, strong, strong.copy()], seed=0)
    assert chosen == 1 and recs[1]["vs_baseline"]["proven"]
    assert recs[2]["incumbent"] == 1 and not recs[2]["vs_incumbent"]["proven"]
    assert recs[2]["vs_baseline"]["proven"]  # B's gain over physics is reported too
    # a later candidate proven better than physics but not than the incumbent stays out
    chosen, _ = select(y, [weak, strong, (strong + weak) / 2], seed=0)
    assert chosen == 1


def test_bootstrap_is_stratified_and_chunked():
    y, weak, strong = _scores(n=400, seed=5)
    a = paired_auc_gain(y, strong, weak, n_boot=300, seed=2)
    assert a.n_boot == 300 and a.lo > 0
    with pytest.raises(ValueError, match="both classes"):
        paired_auc_gain(np.ones(4), np.arange(4.0), np.arange(4.0))


def test_target_fpr_threshold_is_the_empirical_quantile_of_the_backgrounds():
    bg = np.random.default_rng(0).gamma(2.0, size=2000)
    for f in (0.01, 0.05, 0.2):
        thr = fpr_threshold(bg, f)
        assert thr == np.quantile(bg, 1 - f)
        assert abs(np.mean(bg >= thr) - f) <= 1 / len(bg)  # a fraction f of the backgrounds at or above it
    thr, rec, warn = fpr_rule(bg[:300], 0.01, youden=0.5)
    assert rec["rule"] == "target_fpr" and rec["n_backgrounds"] == 300 and rec["youden_threshold"] == 0.5
    assert warn and "noisy" in warn[0]  # 3 expected exceedances


def test_hold_back_takes_plain_backgrounds_only():
    y = np.r_[np.ones(500), np.zeros(12_000)].astype(np.int64)
    idx, drop = hold_back(y, seed=4)
    assert len(idx) == HOLD_BACK_MAX and (y[idx] == 0).all() and len(set(idx)) == len(idx)
    np.testing.assert_array_equal(idx, drop)
    np.testing.assert_array_equal(idx, hold_back(y, seed=4)[0])
    assert len(hold_back(np.r_[np.ones(5), np.zeros(40)], seed=0)[0]) == 10  # a quarter of few plain ones
    # paired: U unlabelled plain copies then their U injected twins; a held-back copy's twin leaves too
    y = np.r_[np.full(40, -1), np.ones(40)].astype(np.int64)
    idx, drop = hold_back(y, seed=1, paired=True)
    assert len(idx) == 10 and (y[idx] == -1).all() and sorted(drop) == sorted([*idx, *(idx + 40)])


def test_excluded_share_keeps_the_drawn_mix():
    # 1,000 held of 6,000 usable; 3,000 screened out, 2,000 of them stored: 500 join, distinct, seeded
    ex = excluded_share(1000, 6000, 3000, 2000, seed=3)
    assert len(ex) == 500 and len(set(ex)) == 500 and ex.max() < 2000
    np.testing.assert_array_equal(ex, excluded_share(1000, 6000, 3000, 2000, seed=3))
    assert len(excluded_share(1000, 1000, 9000, 2000, seed=0)) == 2000  # capped by what is stored
    assert len(excluded_share(1000, 6000, 0, 0, seed=0)) == 0  # nothing screened out: plain ones only


@pytest.mark.parametrize("kw, msg", [
    ({"target_fpr": 0.5, "archive": "a"}, "--target-fpr 0.5: must be a false-alarm rate in (0, 0.5)"),
    ({"target_fpr": 0.0, "archive": "a"}, "--target-fpr 0.0"),
    ({"target_fpr": 0.01}, "--target-fpr needs --archive"),
    ({"folds": 1}, "--folds 1"),
])
def test_train_job_checks_its_flags(kw, msg):
    with pytest.raises(ConfigError) as e:
        TrainJob("labels", "out", **kw)
    assert msg in str(e.value)
