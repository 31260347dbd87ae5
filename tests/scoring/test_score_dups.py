"""Duplicate crop_id counting: in memory and through hash-bucket spill files, against a Counter."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cropray.scoring.dups import find_duplicates


def _write(tmp_path, columns: list[list]) -> tuple[list, Counter]:
    paths, seen = [], Counter()
    for i, ids in enumerate(columns):
        p = tmp_path / "out" / f"part-{i}.parquet"
        p.parent.mkdir(exist_ok=True)
        pq.write_table(pa.table({"crop_id": ids, "score": np.zeros(len(ids), np.float32)}), p, row_group_size=7)
        paths.append(p)
        seen.update(v for v in ids if v is not None)
    return paths, seen


@pytest.mark.parametrize("kind", ["int", "str"])
@pytest.mark.parametrize("max_ids", [10**6, 9])  # one in-memory pass; ~6 spilled buckets
def test_counts_equal_a_counter(tmp_path, kind, max_ids):
    rng = np.random.default_rng(0)
    raw = [rng.integers(0, 40, 20).tolist(), rng.integers(30, 60, 25).tolist(), [None, 3, None]]
    cols = raw if kind == "int" else [[None if v is None else f"c{v:03d}" for v in c] for c in raw]
    paths, seen = _write(tmp_path, cols)
    d = find_duplicates(paths, sum(len(c) for c in cols), max_ids=max_ids, examples=4)
    many = {v: n for v, n in seen.items() if n > 1}
    assert d["crop_ids"] == len(many) and d["extra_rows"] == sum(n - 1 for n in many.values())
    assert len(d["examples"]) == 4 and set(d["examples"]) <= {str(v) for v in many}
    assert not list((tmp_path / "out").glob("_dups-*"))  # spill files removed


def test_no_duplicates_and_no_files(tmp_path):
    paths, _ = _write(tmp_path, [list(range(10)), list(range(10, 30))])
    assert find_duplicates(paths, 30, max_ids=4) == {"crop_ids": 0, "extra_rows": 0, "examples": []}
    assert find_duplicates([], 0) == {"crop_ids": 0, "extra_rows": 0, "examples": []}
