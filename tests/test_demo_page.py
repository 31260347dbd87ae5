"""The demo page's scoring text says what was measured (issue 13, item 14)."""

from __future__ import annotations

from cropray.demo.page import _pool_text

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
