"""The commit protocol without Ray: out-of-order blocks, retried duplicates, failures, stale files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from conftest import crops, tensor_with_nulls

from cropray.archive import resolve_archive
from cropray.scoring.commit import TMP_DIR, Committer, clean_uncommitted, quarantine_path, scores_path
from cropray.scoring.plan import plan_archive
from cropray.scoring.scorer import KIND, MAXRSS, QUARANTINED, READ_ERROR, SCORED, WORKER


def setup(tmp_path, n=30, rg=10, unit_rows=10):
    src = tmp_path / "in"
    src.mkdir()
    pq.write_table(pa.table({"crop_id": np.arange(n), "crop": tensor_with_nulls(crops(n, 0), [])}),
                   src / "x.parquet", row_group_size=rg)
    plan = plan_archive(resolve_archive(str(src)), model_shape=(64, 64), unit_rows=unit_rows)
    return plan


def output(unit, rows, kind=SCORED, reason=None):
    """A ScoreBatch-shaped output for the given file row indices of one unit."""
    rows = np.asarray(rows, np.int64)
    n = len(rows)
    scored = kind == SCORED
    return pa.table({
        "_unit": pa.array(np.full(n, unit.index, np.int32)), "_row": pa.array(rows),
        KIND: pa.array(np.full(n, kind, np.int8)), "crop_id": pa.array(rows),
        "score": pa.array(rows / 100.0, pa.float32(), mask=np.full(n, not scored)),
        "is_signal": pa.array(rows % 2 == 0, mask=np.full(n, not scored)),
        "reason": pa.array([reason] * n, pa.string()),
        WORKER: pa.array(["w"] * n), MAXRSS: pa.array(np.zeros(n, np.int64)),
    })


def test_out_of_order_blocks_and_retried_duplicates_commit_once(tmp_path):
    plan = setup(tmp_path)
    out = tmp_path / "out"
    done = {}
    c = Committer(out, plan, plan.units, "m-1", lambda k, r: done.__setitem__(k, r))
    u0, u1, u2 = plan.units
    c.accept(pa.concat_tables([output(u1, [15, 16, 17]), output(u0, [5, 6, 7, 8, 9])]))  # two units, one block
    c.accept(output(u0, [0, 1, 2]))
    c.accept(output(u0, [2, 3]))  # a retried task: row 2 again
    assert not done and not scores_path(out, u0.key).exists()  # row 4 missing: nothing visible yet
    assert (out / TMP_DIR / f"{u0.key}.parquet").parent.is_dir()
    c.accept(output(u0, [4], kind=QUARANTINED, reason="non_finite"))
    assert done[u0.key]["status"] == "done" and done[u0.key]["scored"] == 9 and done[u0.key]["quarantined"] == 1
    assert c.dropped_duplicates == 1
    c.accept(output(u0, [1]))  # late duplicate after commit: ignored
    t = pq.read_table(scores_path(out, u0.key))
    assert sorted(t.column("crop_id").to_pylist()) == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    assert set(t.column("model_id").to_pylist()) == {"m-1"}
    q = pq.read_table(quarantine_path(out, u0.key)).to_pylist()
    assert q == [{"crop_id": 4, "source_file": u0.uri, "row": 4, "reason": "non_finite"}]
    # a unit whose read failed: its rows so far are discarded, later ones ignored
    c.accept(output(u2, [25], kind=READ_ERROR, reason="x.parquet: read failed (OSError: boom)"))
    c.accept(output(u2, [20, 21]))
    assert done[u2.key]["status"] == "failed" and "boom" in done[u2.key]["error"]
    assert not scores_path(out, u2.key).exists()
    c.accept(output(u1, [10, 11, 12, 13, 14, 18, 19]))
    lost = c.finish()
    assert lost == [] and not (out / TMP_DIR).exists()
    # the scores directory reads as one table: 19 rows (unit 2 failed, row 4 quarantined)
    assert len(pd.read_parquet(out)) == 19


def test_missing_rows_fail_the_unit_at_finish(tmp_path):
    plan = setup(tmp_path, n=10, unit_rows=100)
    done = {}
    c = Committer(tmp_path / "out", plan, plan.units, "m", lambda k, r: done.__setitem__(k, r))
    c.accept(output(plan.units[0], range(9)))
    (msg,) = c.finish()
    assert "only 9 of 10 rows" in msg and done[plan.units[0].key]["status"] == "failed"


def test_clean_uncommitted_removes_tmp_and_files_of_units_not_done(tmp_path):
    out = tmp_path / "out"
    (out / TMP_DIR).mkdir(parents=True)
    (out / "_quarantine").mkdir()
    for name in ("a.parquet", "b.parquet", "_quarantine/b.parquet", f"{TMP_DIR}/c.parquet"):
        (out / name).write_bytes(b"x")
    assert clean_uncommitted(out, done={"a"}) == 2
    assert sorted(p.name for p in out.rglob("*")) == ["_quarantine", "a.parquet"]
