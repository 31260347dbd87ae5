"""Selection logic on hand-made rows: bounded pools, farthest-point picks, quotas, reasons."""

from __future__ import annotations

import numpy as np
import pytest

from cropray.errors import ConfigError
from cropray.suggest.collect import Collector
from cropray.suggest.config import DISAGREE, DIVERSE, REASONS, TOP, UNCERTAIN, SuggestConfig
from cropray.suggest.criteria import priorities
from cropray.suggest.pools import Rows, TopPool
from cropray.suggest.select import choose, kcenter


def rows(n, d=2, seed=0, start=0):
    rng = np.random.default_rng(seed)
    ids = np.arange(start, start + n)
    return Rows(crop_id=ids.astype(object), unit=np.zeros(n, np.int32), row=ids.astype(np.int64),
                score=rng.random(n).astype(np.float32), track=rng.uniform(0, 12, n).astype(np.float32),
                feat=rng.standard_normal((n, d)).astype(np.float32))


def test_top_pool_is_bounded_and_exact_over_many_blocks():
    pool = TopPool(7)
    all_pri = []
    for b in range(20):  # 20 blocks of 50: the pool never holds more than 7 rows
        r = rows(50, seed=b, start=50 * b)
        pri = np.random.default_rng(100 + b).random(50)
        pool.add(r, pri)
        all_pri.append(pri)
        assert len(pool) <= 7
    best = np.argsort(-np.concatenate(all_pri))[:7]  # global row index = crop_id
    got, pri = pool.ordered()
    assert got.crop_id.tolist() == best.tolist()
    assert np.all(np.diff(pri) <= 0)


def test_kcenter_picks_farthest_points_by_hand():
    # points on a line at 0, 1, 2, 10, 11; centre at 0: farthest is 11, then 2 or so by hand:
    # after {11}: distances to {0, 11}: 1->1, 2->4, 10->1 (squared) => pick 2 (index 2)
    feat = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]], np.float32)
    assert kcenter(feat, 2, np.array([[0.0]], np.float32), np.zeros(5)) == [4, 2]
    # no centres: the highest-priority row first, then the farthest from it
    assert kcenter(feat, 2, np.zeros((0, 1), np.float32), np.array([0, 0, 5, 0, 0.0])) == [2, 4]
    # duplicates are never picked twice
    dup = np.zeros((4, 1), np.float32)
    assert sorted(kcenter(dup, 4, np.zeros((0, 1), np.float32), np.arange(4.0))) == [0, 1, 2, 3]


def test_priorities_by_hand():
    score = np.array([0.5, 0.9, 0.1, 0.9])
    track = np.array([6.0, 2.0, 12.0, 12.0])  # logit 1.5 * (t - 6): 0, -6, +9, +9
    p = priorities(score, track, 0.5, True, np.array([0.1, 0.2, 0.3, 0.4]))
    assert p[UNCERTAIN][0] == pytest.approx(0.0) and p[UNCERTAIN][1] < 0
    m1 = np.log(9)  # logit(0.9) - logit(0.5)
    assert p[DISAGREE][1] == pytest.approx(min(m1, 6.0))  # model yes, physics no
    assert p[DISAGREE][2] == pytest.approx(min(m1, 9.0))  # model no, physics yes
    assert p[DISAGREE][3] == -np.inf  # both say signal
    assert p[TOP].tolist() == score.tolist() and p[DIVERSE].tolist() == [0.1, 0.2, 0.3, 0.4]


def test_choose_fills_quotas_and_never_repeats():
    cfg = SuggestConfig(n=20, features=2)
    col = Collector(cfg, threshold=0.5, probability=True)
    for b in range(5):
        col.add(rows(200, seed=b, start=200 * b))
    picks = choose(col)
    ids = picks.rows.crop_id.tolist()
    assert len(ids) == 20 == len(set(ids))
    q = cfg.quotas()
    assert sum(q.values()) == 20
    for r in REASONS:
        assert int((picks.reason == r).sum()) >= (q[r] if r != DISAGREE else 0)
    # each pick qualifies for its reason: it is in that reason's pool
    for cid, r in zip(ids, picks.reason):
        assert cid in set(col.pools[r].rows.crop_id.tolist())


def test_short_pool_hands_quota_on():
    cfg = SuggestConfig(n=10, features=2)
    col = Collector(cfg, threshold=0.5, probability=True)
    r = rows(100)
    r.track[:] = np.where(r.score >= 0.5, 12.0, 0.0)  # physics always agrees: no disagreements
    col.add(r)
    picks = choose(col)
    assert len(picks.reason) == 10 and DISAGREE not in set(picks.reason)


def test_config_refuses_bad_values():
    with pytest.raises(ConfigError):
        SuggestConfig(n=0)
    with pytest.raises(ConfigError, match="unknown reasons"):
        SuggestConfig(n=5, shares={"bogus": 1.0})
