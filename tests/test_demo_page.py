"""The demo page's scoring text says what was measured; the demo's choice follows the paired rule."""

from __future__ import annotations

import numpy as np
import pytest

from cropray.demo import DemoConfig
from cropray.demo.page import _archive_section, _pool_text
from cropray.demo.twin import choose
from cropray.errors import ConfigError

POOL = {"min_size": 2, "max_size": 2, "num_cpus": 0.5, "threads": 1, "read_cpus": 1}


def test_every_row_in_the_first_block_reports_no_zero_rate():
    # the quick demo: 4,000 crops, all in the first block; the pipeline's steady rate is then 0
    sc = {"first_block_s": 33.0, "steady_crops_per_s": 0.0, "rows_scored": 4000, "wall_s": 35.2, "crops_per_s": 113.6}
    text = _pool_text(POOL, sc)
    assert "0 crops/s" not in text.replace("113.6", "")  # no zero rate, whatever the formatting
    assert "First results after 33.0 s" in text
    assert "every row arrived in that first block" in text and "no steady-state rate" in text
    assert "4,000 crops in 35.2 s overall, 114 crops/s including start-up" in text


def test_rest_too_quick_to_time_and_a_real_steady_rate():
    short = _pool_text(POOL, {"first_block_s": 5.0, "steady_crops_per_s": None, "rows_scored": 900,
                              "wall_s": 5.5, "crops_per_s": 163.6})
    assert "within a second" in short and "crops/s." not in short.split("Measured instead")[0]
    steady = _pool_text(POOL, {"first_block_s": 20.0, "steady_crops_per_s": 1549.2, "rows_scored": 100_000,
                               "wall_s": 65.0, "crops_per_s": 1538.0})
    assert steady.endswith("First results after 20.0 s (actor start-up: imports, bundle, path build), "
                           "then 1,549 crops/s.")
    assert _pool_text(POOL, {"first_block_s": None}).endswith("keep 1 CPU.")


def _m(v):
    return {"value": v, "lo": v - 0.01, "hi": min(1.0, v + 0.01)}


Y = np.r_[np.ones(40, np.int64), np.zeros(40, np.int64)]  # 40 signals, 40 not: hand-made out-of-fold scores


def _scores(sep: float, seed: int) -> np.ndarray:
    """(80,) scores whose classes are `sep` noise widths apart (ROC-AUC grows with sep)."""
    return Y * sep + np.random.default_rng(seed).normal(0.0, 1.0, len(Y))


def test_choose_ships_physics_unless_a_learned_bundle_proves_a_gain():
    phys = _scores(0.8, 0)
    # learned scores that are physics plus noise: ROC-AUC differences of either sign, never proven
    rng = np.random.default_rng(1)
    without, with_ = phys + rng.normal(0, 0.3, 80), phys + rng.normal(0, 0.3, 80)
    chosen, why, gains = choose(Y, phys, without, with_, seed=0)
    assert chosen == "dedoppler" and why.startswith("dedoppler ships: no learned bundle proves a gain")
    assert set(gains) == {"without", "with"} and not any(g["proven"] for g in gains.values())
    for g in gains.values():  # every gain is in the reason, with its interval
        assert f"{g['gain']:+.4f} [{g['lo']:+.4f}, {g['hi']:+.4f}]" in why
    assert choose(Y, phys, without, None, seed=0)[0] == "dedoppler"  # no twin (--archive-crops 0)


def test_choose_is_paired_not_a_race_of_cv_figures():
    from sklearn.metrics import roc_auc_score

    phys, strong = _scores(0.8, 0), _scores(2.0, 2)
    # the archive twin reads a CV ROC-AUC 0.015 above the labels-only model's (the old rule shipped it: a
    # 0.001 tie margin), but on the same crops that gain is noise: the cheaper labels-only bundle stays
    twin = strong + np.random.default_rng(10).normal(0, 0.5, 80)
    assert roc_auc_score(Y, twin) > roc_auc_score(Y, strong) + 0.01
    chosen, why, gains = choose(Y, phys, strong, twin, seed=0)
    assert chosen == "without" and gains["without"]["proven"] and "not proven, the cheaper one stays" in why
    # a small gain that every crop shares is proven although each figure's own interval is wide
    lift = phys + 0.5 * Y
    assert roc_auc_score(Y, lift) - roc_auc_score(Y, phys) < 0.2
    chosen, _, gains = choose(Y, phys, phys, lift, seed=0)
    assert chosen == "with" and gains["with"]["proven"] and not gains["without"]["proven"]
    # the twin is judged against the incumbent (the labels-only bundle), not only against physics
    chosen, why, _ = choose(Y, phys, strong, _scores(8.0, 5), seed=0)
    assert chosen == "with" and "its paired gain over the labels-only bundle is" in why
    assert choose(Y, phys, strong, None, seed=0)[0] == "without"
    # seeded: the same scores give the same decision and interval
    assert choose(Y, phys, strong, twin, seed=0) == choose(Y, phys, strong, twin, seed=0)


def test_archive_section_sets_with_and_without_side_by_side():
    comp = {"without": {"cv_roc_auc": _m(0.95), "roc_auc": _m(0.94), "recall_at_1pct_fpr": _m(0.70), "model_id": "a"},
            "with": {"cv_roc_auc": _m(0.97), "roc_auc": _m(0.96), "recall_at_1pct_fpr": _m(0.80), "model_id": "b"},
            "dedoppler": {"cv_roc_auc": _m(0.93), "roc_auc": _m(0.92), "recall_at_1pct_fpr": _m(0.60),
                          "model_id": "dedoppler"},
            "archive": {"drawn": 1000, "excluded": 480, "injected": 260, "plain": 260, "warnings": [],
                        "settings": {"per_epoch": 256, "real_share": 0.5}}}
    comp["chosen"], comp["reason"], comp["gains"] = choose(Y, _scores(0.8, 0), _scores(2.0, 2), _scores(8.0, 5))
    assert comp["chosen"] == "with"
    sec = _archive_section(comp, DemoConfig.quick())
    (header, rows), = sec.tables
    assert header[1:4] == ["CV ROC-AUC (labels)", "fresh ROC-AUC", "fresh recall @1% FPR"]
    assert [r[0] for r in rows] == ["labels only (the sweep's bundle)", "labels + archive injection - shipped",
                                    "dedoppler (label-free, no training)"]
    assert rows[1][1:4] == ["0.970 [0.960, 0.980]", "0.960 [0.950, 0.970]", "0.800 [0.790, 0.810]"]
    text = " ".join(sec.paragraphs)
    assert "1,000 drawn, 480 excluded" in text and comp["reason"] in text
    from cropray.cli.demo import _archive_lines

    lines = _archive_lines(comp)  # the terminal summary: the same figures
    assert lines[0] == "archive   with: CV 0.970, fresh ROC-AUC 0.960, recall@1%FPR 0.800"
    assert "dedoppler: CV 0.930, fresh ROC-AUC 0.920" in lines[2] and lines[3].startswith("          shipped with:")
    assert _archive_lines({}) == []

    # physics ships: its row says so, and the labels-only row says the sweep itself fell back
    comp["chosen"], comp["reason"] = "dedoppler", "dedoppler ships: no learned bundle proves a gain over it (...)"
    comp["without"]["arch"] = "dedoppler"
    (_, rows), = _archive_section(comp, DemoConfig.quick()).tables
    assert rows[2][0] == "dedoppler (label-free, no training) - shipped"
    assert rows[0][0] == "labels only (the sweep's bundle: dedoppler, its best trial's gain unproven)"
    del comp["with"]
    assert _archive_lines(comp) == [f"choice    shipped dedoppler: {comp['reason']}"]


def test_demo_config_target_fpr():
    assert DemoConfig(target_fpr=0.01).target_fpr == 0.01 and DemoConfig().target_fpr is None
    with pytest.raises(ConfigError, match="target_fpr needs archive_crops > 0") as e:
        DemoConfig(target_fpr=0.01, archive_crops=0)
    assert e.value.field == "target_fpr"
    for bad in (0.0, 0.5, -0.1):
        with pytest.raises(ConfigError) as e:
            DemoConfig(target_fpr=bad)
        assert e.value.field == "target_fpr"
