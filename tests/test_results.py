"""The typed job results (cropray._result.JobResult): --json is `asdict`, item access reads fields."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cropray.scoring.result import ScoreResult


def _manifest(**run) -> dict:
    totals = {"rows_read": 10, "rows_scored": 9, "rows_quarantined": 1, "reconciled": True, "reasons": {"nan": 1},
              "positives": 3, "files": 2, "files_done": 1, "files_failed": 1, "files_pending": 0}
    return {"totals": totals, "runs": [{"rows": 9, "actors": [{"worker": "h:1", "path": "fold_cl", "rows": 9,
                                                               "peak_rss_mb": 300.0}], **run}],
            "config": {"output": "/o"}, "model": {"model_id": "m1"}, "state": "incomplete",
            "files": [{"file": "a.parquet", "status": "done", "error": None},
                      {"file": "b.parquet", "status": "failed", "error": "b.parquet: no 'crop' column"}],
            "duplicates": {"crop_ids": 2, "extra_rows": 3, "examples": ["x", "y"]}}


def test_score_result_from_the_manifest_and_its_json():
    r = ScoreResult.from_manifest(_manifest(resumed=True))
    assert r.rows_scored == 9 and r.resumed and r.duplicates.crop_ids == 2 and r.actors[0].path == "fold_cl"
    assert [f.file for f in r.failed] == ["b.parquet"] and r.failed[0].error.endswith("column")
    d = r.to_dict()
    assert d == dataclasses.asdict(r) and d["duplicates"] == {"crop_ids": 2, "extra_rows": 3, "examples": ["x", "y"]}
    assert d["actors"] == [{"worker": "h:1", "path": "fold_cl", "rows": 9, "peak_rss_mb": 300.0}]
    assert json.loads(json.dumps(d)) == d  # JSON-able as is
    # the keys `cropray score --json` printed before the result was typed
    assert {"rows_this_run", "units_scored", "steady_crops_per_s", "noop", "noop_reason"} <= set(d)


def test_item_access_reads_fields_and_nothing_else():
    r = ScoreResult.from_manifest(_manifest())
    assert r["rows_read"] == 10 and r["duplicates"]["extra_rows"] == 3 and r.get("nope", 7) == 7
    assert "positives" in r and "nope" not in r
    with pytest.raises(KeyError):
        r["nope"]
    with pytest.raises(TypeError):
        r["rows_read"] = 1  # a result is not edited after it is made
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.rows_read = 1
