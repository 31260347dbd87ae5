"""Duplicate `crop_id`s across the committed outputs, in bounded memory, with pyarrow.

Only the `crop_id` column of the output files is read, once, one row group at a time. Up to `max_ids`
ids are counted in memory with `pyarrow.compute.value_counts`; beyond that the ids are partitioned by
a stable hash into K buckets spilled to Arrow IPC files (K grows with the rows, so that a bucket holds
about `max_ids` ids), and each bucket is counted on its own: equal ids always share a bucket.

Why pyarrow and not DuckDB (which would spill a GROUP BY by itself): pyarrow already reads every
Parquet file here, and one hash partition plus `value_counts` is all the query there is; DuckDB would
add a second query engine as a dependency for it.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq


def _bucket(ids: pa.Array, k: int) -> np.ndarray:
    """(n,) bucket of each id in [0, k): deterministic, equal ids -> equal buckets."""
    if pa.types.is_integer(ids.type):
        return np.mod(ids.to_numpy(zero_copy_only=False), k)
    # pandas' vectorised SipHash with a fixed key: stable across processes and runs.
    h = pd.util.hash_array(ids.to_numpy(zero_copy_only=False))
    return (h % np.uint64(k)).astype(np.int64)


def _ids(paths: list) -> Iterator[pa.Array]:
    """Every non-null crop_id of the files, one row group at a time."""
    for p in paths:
        f = pq.ParquetFile(p)
        for g in range(f.num_row_groups):
            col = f.read_row_group(g, columns=["crop_id"]).column(0)
            for chunk in col.chunks:
                chunk = chunk.drop_null()
                if len(chunk):
                    yield chunk


class _Tally:
    """Running totals over counted partitions: ids seen more than once, extra rows, a few examples."""

    def __init__(self, examples: int):
        self.crop_ids = self.extra_rows = 0
        self.examples: list[str] = []
        self._want = examples

    def add(self, parts: list[pa.Array]) -> None:
        if not parts:
            return
        vc = pc.value_counts(pa.chunked_array(parts))
        counts = vc.field("counts").to_numpy()
        many = counts > 1
        if not many.any():
            return
        self.crop_ids += int(many.sum())
        self.extra_rows += int((counts[many] - 1).sum())
        room = self._want - len(self.examples)
        if room > 0:
            self.examples += [str(v) for v in vc.field("values").filter(pa.array(many))[:room].to_pylist()]

    def result(self) -> dict:
        return {"crop_ids": self.crop_ids, "extra_rows": self.extra_rows, "examples": self.examples}


def _spill(paths: list, k: int, tmp: Path) -> list[Path]:
    """Partition every id into k bucket files (Arrow IPC streams) under tmp; returns the files written."""
    writers: dict[int, ipc.RecordBatchStreamWriter] = {}
    try:
        for chunk in _ids(paths):
            b = _bucket(chunk, k)
            for j in np.unique(b):
                part = pa.record_batch([chunk.filter(pa.array(b == j))], names=["crop_id"])
                if j not in writers:
                    writers[j] = ipc.new_stream(str(tmp / f"{j}.arrows"), part.schema)
                writers[j].write_batch(part)
    finally:
        for w in writers.values():
            w.close()
    return [tmp / f"{j}.arrows" for j in sorted(writers)]


def find_duplicates(paths: list, total_rows: int, *, max_ids: int = 4_000_000, examples: int = 10,
                    spill_dir: str | os.PathLike | None = None) -> dict:
    """{"crop_ids": ids seen more than once, "extra_rows": rows beyond the first of each, "examples": [...]}.

    spill_dir: where bucket files go when there are more than `max_ids` rows (default: the directory
    holding the files, which has room for their ids; a `_dups-*` directory removed afterwards)."""
    tally = _Tally(examples)
    k = max(1, math.ceil(total_rows / max_ids))
    if k == 1 or not paths:
        tally.add(list(_ids(paths)))
        return tally.result()
    where = spill_dir if spill_dir is not None else os.path.commonpath([os.path.dirname(str(p)) for p in paths])
    with tempfile.TemporaryDirectory(prefix="_dups-", dir=where) as tmp:
        for bucket_file in _spill(paths, k, Path(tmp)):
            with ipc.open_stream(str(bucket_file)) as reader:
                tally.add(reader.read_all().column(0).chunks)
    return tally.result()
