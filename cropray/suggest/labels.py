"""Labelled crop ids of a labelled set (file, directory or glob), refusing contradictions.

A crop_id given two different labels (in one file or across files) is a CroprayError naming the
files and the ids: neither `suggest` (which skips labelled crops) nor `label` (which appends to such
a set) can guess which answer is right.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from cropray.errors import CroprayError

MAX_NAMED = 10


def label_map(path, *, missing_ok: bool = False, files=None) -> dict[str, tuple[int, str]]:
    """{str(crop_id): (label, file)} of every labelled row under `path`; {} if missing and missing_ok."""
    from cropray.archive import resolve_archive

    if missing_ok and not Path(path).exists():
        return {}
    paths = files if files is not None else resolve_archive(str(path)).paths
    seen: dict[str, tuple[int, str]] = {}
    conflicts: dict[str, set] = {}
    for p in paths:
        names = pq.read_schema(p).names
        missing = [c for c in ("crop_id", "label") if c not in names]
        if missing:
            raise CroprayError(f"{p}: labelled set lacks column(s) {', '.join(missing)} "
                               f"(columns: {', '.join(names[:12])})")
        t = pq.read_table(p, columns=["crop_id", "label"])
        if t.column("label").null_count or t.column("crop_id").null_count:
            raise CroprayError(f"{p}: null crop_id or label; every labelled row needs both")
        ids = [str(v) for v in t.column("crop_id").to_pylist()]
        lab = np.asarray(t.column("label").to_numpy(zero_copy_only=False))
        if not np.isin(lab, [0, 1]).all():
            raise CroprayError(f"{p}: label values other than 0 and 1 (1 = signal, 0 = not)")
        for cid, y in zip(ids, lab.astype(int).tolist()):
            old = seen.get(cid)
            if old is not None and old[0] != y:
                conflicts.setdefault(cid, {old[1]}).add(str(p))
            elif old is None:
                seen[cid] = (y, str(p))
    if conflicts:
        ids = sorted(conflicts)
        where = sorted({f for fs in conflicts.values() for f in fs})
        raise CroprayError(f"{len(ids)} crop_id(s) have two different labels: {', '.join(ids[:MAX_NAMED])}"
                           f"{' ...' if len(ids) > MAX_NAMED else ''} (in {', '.join(where)}); "
                           "remove the wrong rows, then run again")
    return seen
