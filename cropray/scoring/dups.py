"""Duplicate `crop_id`s across the committed outputs, in bounded memory.

Only the `crop_id` column of the output files is read. Ids are counted with `pyarrow.compute.value_counts`
one hash bucket at a time: with K buckets a pass holds about 1/K of the ids, and K grows with the
number of rows so that a pass never holds more than `max_ids` of them.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def _bucket(ids: pa.Array, k: int) -> np.ndarray:
    """(n,) bucket of each id in [0, k): deterministic, equal ids -> equal buckets."""
    if pa.types.is_integer(ids.type):
        return np.mod(ids.to_numpy(zero_copy_only=False), k)
    # pandas' vectorised SipHash with a fixed key: stable across processes and runs.
    h = pd.util.hash_array(ids.to_numpy(zero_copy_only=False))
    return (h % np.uint64(k)).astype(np.int64)


def find_duplicates(paths: list, total_rows: int, *, max_ids: int = 4_000_000, examples: int = 10) -> dict:
    """{"crop_ids": ids seen more than once, "extra_rows": rows beyond the first of each, "examples": [...]}."""
    k = max(1, math.ceil(total_rows / max_ids))
    n_ids = extra = 0
    shown: list = []
    for b in range(k):
        parts = []
        for p in paths:
            col = pq.read_table(p, columns=["crop_id"]).column(0)
            for ch in col.chunks:
                ch = ch.drop_null()
                if k > 1 and len(ch):
                    ch = ch.filter(pa.array(_bucket(ch, k) == b))
                if len(ch):
                    parts.append(ch)
        if not parts:
            continue
        vc = pc.value_counts(pa.chunked_array(parts))
        counts = vc.field("counts").to_numpy()
        many = counts > 1
        if many.any():
            n_ids += int(many.sum())
            extra += int((counts[many] - 1).sum())
            if len(shown) < examples:
                shown += [str(v) for v in vc.field("values").filter(pa.array(many))[: examples - len(shown)].to_pylist()]
    return {"crop_ids": n_ids, "extra_rows": extra, "examples": shown}
