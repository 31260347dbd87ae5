"""Exactly-once output commit: per-unit temporary files, atomic rename, manifest record.

Layout of OUTPUT (pyarrow/pandas dataset discovery skips names starting with `_` or `.`, so
`pandas.read_parquet(OUTPUT)` sees the scores only):

    OUTPUT/<unit key>.parquet               scores of one unit (crop_id, score, is_signal, model_id, keep)
    OUTPUT/_quarantine/<unit key>.parquet   its quarantined rows (crop_id, source_file, row, reason)
    OUTPUT/_tmp/                            units being written (deleted at every start)
    OUTPUT/_manifest.json                   which units are done; the report

The driver is the only writer. Rows of a unit arrive from the actors in any order and in any
number of blocks; the committer appends them to the unit's temporary files, keeping a bitmap of
the unit's row indices. A row index seen twice (a retried task whose first attempt's output also
arrived) is dropped. When every row index of the unit is accounted for, the files are closed and
fsynced, the quarantine file and then the scores file are renamed into place, and the unit is
recorded as done in the manifest. A unit whose read failed is discarded (temporary files deleted).

Output names are a function of the unit alone, so a unit scored again after a crash replaces its
own files instead of adding rows. At start, final files of units the manifest does not list as
done (renamed just before a kill, before the manifest was saved) are deleted with `_tmp/`.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cropray.scoring.frames import ROW, UNIT
from cropray.scoring.plan import Plan, Unit
from cropray.scoring.scorer import KIND, QUARANTINED, READ_ERROR, SCORED

TMP_DIR, QUARANTINE_DIR = "_tmp", "_quarantine"
# Test hook: with CROPRAY_TEST_KILL_AFTER_COMMITS=N the driver saves its manifest and SIGKILLs itself
# right after recording its Nth unit commit of the process (tests/scoring/test_score_recovery.py): a
# crash at a known point, instead of a race between a polling test and the job. Unset: nothing.
KILL_AFTER_COMMITS_ENV = "CROPRAY_TEST_KILL_AFTER_COMMITS"
_commits_seen = 0


def crash_after_commit_hook(manifest) -> None:
    """Called by the driver after each unit is recorded in `manifest`; see KILL_AFTER_COMMITS_ENV."""
    global _commits_seen
    n = os.environ.get(KILL_AFTER_COMMITS_ENV)
    if not n:
        return
    _commits_seen += 1
    if _commits_seen >= int(n):
        import signal

        manifest.save(force=True)  # the Nth unit is durable: what a crash just after its record leaves
        os.kill(os.getpid(), signal.SIGKILL)
FLUSH_ROWS = 65_536  # rows buffered per unit and file before a row group is written


def scores_path(out: Path, key: str) -> Path:
    return Path(out) / f"{key}.parquet"


def quarantine_path(out: Path, key: str) -> Path:
    return Path(out) / QUARANTINE_DIR / f"{key}.parquet"


def clean_uncommitted(out: Path, done: set[str]) -> int:
    """Delete `_tmp/` and any final file whose unit is not done. Returns the number of files deleted."""
    out = Path(out)
    shutil.rmtree(out / TMP_DIR, ignore_errors=True)
    n = 0
    for d in (out, out / QUARANTINE_DIR):
        if d.is_dir():
            for p in d.glob("*.parquet"):
                if p.stem not in done:
                    p.unlink()
                    n += 1
    return n


def rows_on_disk(out: Path, done: set[str]) -> tuple[int, int]:
    """(scores rows, quarantine rows) in the committed files of `done` units, from their footers."""
    n = [0, 0]
    for k in done:
        for i, p in enumerate((scores_path(out, k), quarantine_path(out, k))):
            if p.exists():
                n[i] += pq.ParquetFile(p).metadata.num_rows
    return n[0], n[1]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Sink:
    """A buffered ParquetWriter on one temporary file, opened at the first row."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path, self.schema = path, schema
        self.parts: list[pa.Table] = []
        self.buffered = self.rows = 0
        self.writer: pq.ParquetWriter | None = None

    def add(self, t: pa.Table) -> None:
        if t.num_rows:
            self.parts.append(t)
            self.buffered += t.num_rows
            self.rows += t.num_rows
            if self.buffered >= FLUSH_ROWS:
                self.flush()

    def flush(self) -> None:
        if not self.parts:
            return
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, self.schema, compression="zstd")
        self.writer.write_table(pa.concat_tables(self.parts))
        self.parts, self.buffered = [], 0

    def close(self) -> bool:
        """Write what is left and close; True if the file holds rows."""
        self.flush()
        if self.writer is not None:
            self.writer.close()
            _fsync(self.path)
            return True
        return False

    def discard(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.path.unlink(missing_ok=True)


class _Open:
    """A unit being received: bitmap of row indices seen, two sinks, counters."""

    def __init__(self, unit: Unit, out: Path, plan: Plan):
        self.unit = unit
        self.seen = np.zeros(unit.rows, dtype=bool)  # 1 byte per row, freed at commit
        self.n_seen = 0
        tmp = Path(out) / TMP_DIR
        self.scores = _Sink(tmp / f"{unit.key}.parquet", plan.output_schema())
        self.quarantine = _Sink(tmp / f"{unit.key}.quarantine.parquet", plan.quarantine_schema())
        self.positives = 0
        self.reasons: Counter = Counter()


class Committer:
    """Receives ScoreBatch output tables, writes and commits units; `on_commit(key, record)`."""

    def __init__(self, out: Path, plan: Plan, units: list[Unit], model_id: str, on_commit):
        self.out, self.plan, self.model_id, self.on_commit = Path(out), plan, model_id, on_commit
        self.units = {u.index: u for u in units}
        self.open: dict[int, _Open] = {}
        self.closed: set[int] = set()
        self.dropped_duplicates = 0  # rows delivered twice by retries, written once
        (self.out / TMP_DIR).mkdir(parents=True, exist_ok=True)
        self.keep = [f.name for f in plan.keep_fields]

    def accept(self, table: pa.Table) -> None:
        """Route one output table (rows of one or several units) to the units' sinks."""
        if table.num_rows == 0:
            return
        unit_col = table.column(UNIT).to_numpy()
        if unit_col[0] == unit_col[-1] and (unit_col == unit_col[0]).all():
            self._accept_unit(int(unit_col[0]), table)
            return
        order = np.argsort(unit_col, kind="stable")
        table, unit_col = table.take(order), unit_col[order]
        starts = np.flatnonzero(np.r_[True, unit_col[1:] != unit_col[:-1]])
        for a, b in zip(starts, np.r_[starts[1:], len(unit_col)]):
            self._accept_unit(int(unit_col[a]), table.slice(a, b - a))

    def _accept_unit(self, idx: int, t: pa.Table) -> None:
        if idx in self.closed:
            return  # a failed unit's late rows, or a committed unit's retried rows
        st = self.open.get(idx) or self.open.setdefault(idx, _Open(self.units[idx], self.out, self.plan))
        kind = t.column(KIND).to_numpy()
        if (kind == READ_ERROR).any():
            msg = t.column("reason").to_numpy(zero_copy_only=False)[kind == READ_ERROR][0]
            return self._fail(idx, st, str(msg))
        rel = t.column(ROW).to_numpy() - st.unit.first_row  # (n,) row index within the unit
        fresh = ~st.seen[rel]
        if len(rel) > 1:
            _, first = np.unique(rel, return_index=True)
            once = np.zeros(len(rel), bool)
            once[first] = True
            fresh &= once
        if not fresh.all():
            self.dropped_duplicates += int((~fresh).sum())
            t, kind, rel = t.filter(pa.array(fresh)), kind[fresh], rel[fresh]
        st.seen[rel] = True
        st.n_seen += len(rel)
        n = t.num_rows
        scored = t.filter(pa.array(kind == SCORED))
        if scored.num_rows:
            cols = [scored.column("crop_id"), scored.column("score"), scored.column("is_signal"),
                    pa.repeat(pa.scalar(self.model_id), scored.num_rows)] + [scored.column(k) for k in self.keep]
            st.scores.add(pa.Table.from_arrays(cols, schema=st.scores.schema))
            st.positives += int(pc.sum(scored.column("is_signal")).as_py() or 0)
        if scored.num_rows < n:
            q = t.filter(pa.array(kind == QUARANTINED))
            qt = pa.Table.from_arrays(
                [q.column("crop_id"), pa.repeat(pa.scalar(st.unit.uri), q.num_rows), q.column(ROW), q.column("reason")],
                schema=st.quarantine.schema)
            st.quarantine.add(qt)
            st.reasons.update(q.column("reason").to_pylist())  # only quarantined rows: rare
        if st.n_seen == st.unit.rows:
            self._commit(idx, st)

    def _commit(self, idx: int, st: _Open) -> None:
        key = st.unit.key
        has_q, has_s = st.quarantine.close(), st.scores.close()
        q_final, s_final = quarantine_path(self.out, key), scores_path(self.out, key)
        # Quarantine first, scores last: a unit is visible to readers once its scores file appears.
        if has_q:
            q_final.parent.mkdir(exist_ok=True)
            os.replace(st.quarantine.path, q_final)
        else:
            q_final.unlink(missing_ok=True)
        if has_s:
            os.replace(st.scores.path, s_final)
        else:
            s_final.unlink(missing_ok=True)
        self._close(idx)
        self.on_commit(key, dict(
            st.unit.describe(), status="done", scored=st.scores.rows, quarantined=st.quarantine.rows,
            positives=st.positives, reasons=dict(st.reasons), error=None,
            output=s_final.name if has_s else None,
            quarantine=f"{QUARANTINE_DIR}/{q_final.name}" if has_q else None))

    def _fail(self, idx: int, st: _Open, error: str) -> None:
        st.scores.discard()
        st.quarantine.discard()
        self._close(idx)
        self.on_commit(st.unit.key, dict(st.unit.describe(), status="failed", error=error, scored=0,
                                         quarantined=0, positives=0, reasons={}))

    def _close(self, idx: int) -> None:
        self.open.pop(idx, None)
        self.closed.add(idx)

    def abort(self) -> None:
        """The run is failing (a full disk, Ctrl-C): close and drop every open unit's temporary files,
        so no descriptor stays open on the output (a full tmpfs can then be unmounted or grown)."""
        for st in self.open.values():
            for sink in (st.scores, st.quarantine):
                try:
                    sink.discard()
                except OSError:  # closing flushes: on a full disk that fails too; the file goes anyway
                    sink.path.unlink(missing_ok=True)
        self.open.clear()

    def finish(self) -> list[str]:
        """After the pipeline: any unit still open lost rows (must not happen). Fail it loudly."""
        lost = []
        for idx in list(self.open) + [i for i in self.units if i not in self.closed and i not in self.open]:
            st = self.open.get(idx) or _Open(self.units[idx], self.out, self.plan)
            msg = f"{st.unit.uri}: only {st.n_seen} of {st.unit.rows} rows came back from the pipeline"
            self._fail(idx, st, msg)
            lost.append(msg)
        shutil.rmtree(self.out / TMP_DIR, ignore_errors=True)
        return lost
