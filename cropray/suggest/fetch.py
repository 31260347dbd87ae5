"""Read back the crops of the K picked rows from the archive (the pipeline's rows never carry crops
to the driver): per file, only the row groups that hold a pick, one row group in memory at a time."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cropray.archive import CROP, CROP_ID, crop_spec_from_schema, validate_decode
from cropray.errors import ArchiveError


def fetch_crops(filesystem, picks: list[tuple[str, str, int, object]], crop_shape=None) -> list[np.ndarray]:
    """picks: (path, uri, row, crop_id) -> one (H, W) float32 crop each, in the same order.

    ArchiveError when a row no longer holds its crop_id (the file changed since it was scored)."""
    by_file: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, (path, uri, _row, _cid) in enumerate(picks):
        by_file[(path, uri)].append(i)
    out: list[np.ndarray | None] = [None] * len(picks)
    for (path, uri), items in by_file.items():
        with filesystem.open_input_file(path) as f:
            pf = pq.ParquetFile(f)
            spec = crop_spec_from_schema(pf.schema_arrow, crop_shape, source=uri)
            starts = np.cumsum([0] + [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)])
            groups: dict[int, list[int]] = defaultdict(list)
            for i in items:
                groups[int(np.searchsorted(starts, picks[i][2], side="right") - 1)].append(i)
            for g, idx in sorted(groups.items()):
                t = pf.read_row_group(g, columns=[CROP_ID, CROP])
                local = pa.array([picks[i][2] - int(starts[g]) for i in idx], pa.int64())
                sub = t.take(local)
                x, check = validate_decode(sub, spec)  # (n, 1, H, W): the same decoding as scoring
                ids = sub.column(CROP_ID).to_pylist()
                if not check.valid.all() or any(a != picks[i][3] for a, i in zip(ids, idx)):
                    raise ArchiveError(f"{uri}: rows {[picks[i][2] for i in idx][:5]} no longer hold the crops "
                                       "that were scored (file changed during the run?)")
                for j, i in enumerate(idx):
                    out[i] = x[j, 0]
    return out  # type: ignore[return-value]
