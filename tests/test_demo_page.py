"""The demo page's scoring text says what was measured (issue 13, item 14)."""

from __future__ import annotations

from cropray.demo import DemoConfig
from cropray.demo.page import _archive_section, _pool_text
from cropray.demo.twin import choose

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


def test_archive_section_sets_with_and_without_side_by_side():
    comp = {"without": {"cv_roc_auc": _m(0.95), "roc_auc": _m(0.94), "recall_at_1pct_fpr": _m(0.70), "model_id": "a"},
            "with": {"cv_roc_auc": _m(0.97), "roc_auc": _m(0.96), "recall_at_1pct_fpr": _m(0.80), "model_id": "b"},
            "dedoppler": {"cv_roc_auc": _m(0.93), "roc_auc": _m(0.92), "recall_at_1pct_fpr": _m(0.60),
                          "model_id": "dedoppler"},
            "archive": {"drawn": 1000, "excluded": 480, "injected": 260, "plain": 260, "warnings": [],
                        "settings": {"per_epoch": 256, "real_share": 0.5}}}
    comp["chosen"], comp["reason"] = choose(comp["without"]["cv_roc_auc"], comp["with"]["cv_roc_auc"])
    assert comp["chosen"] == "with" and "0.9700 with the archive vs 0.9500 without" in comp["reason"]
    sec = _archive_section(comp, DemoConfig.quick())
    (header, rows), = sec.tables
    assert header[1:4] == ["CV ROC-AUC (labels)", "fresh ROC-AUC", "fresh recall @1% FPR"]
    assert [r[0] for r in rows] == ["labels only (the sweep's bundle)", "labels + archive injection - shipped",
                                    "dedoppler (label-free, no training)"]
    assert rows[1][1:4] == ["0.970 [0.960, 0.980]", "0.960 [0.950, 0.970]", "0.800 [0.790, 0.810]"]
    assert "1,000 drawn, 480 excluded" in " ".join(sec.paragraphs)
    from cropray.cli.demo import _archive_lines

    lines = _archive_lines(comp)  # the terminal summary: the same figures
    assert lines[0] == "archive   with: CV 0.970, fresh ROC-AUC 0.960, recall@1%FPR 0.800"
    assert "dedoppler: CV 0.930, fresh ROC-AUC 0.920" in lines[2] and lines[3].startswith("          shipped with:")
    assert _archive_lines({}) == []
    # a tie (within 0.001) goes to the labels-only model, the cheaper one; no twin: nothing to choose
    assert choose(_m(0.95), _m(0.9505))[0] == "without" and choose(_m(0.95), None)[0] == "without"
