"""The queue being labelled: validated on load, crops decoded one at a time on demand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cropray.errors import CroprayError

NEIGHBOURS = 4
INFO_COLUMNS = ("score", "reason", "track_stat", "is_signal", "source_file", "model_id")


class Queue:
    """Rows of QUEUE in order (by `rank` when present). `crop(i)` -> (H, W) float32."""

    def __init__(self, path):
        from cropray.archive import crop_spec_from_schema

        self.path = Path(path)
        if not self.path.is_file():
            raise CroprayError(f"{self.path}: no such queue file (make one with `cropray suggest`)")
        try:
            t = pq.read_table(self.path)
        except Exception as e:
            raise CroprayError(f"{self.path}: not a readable Parquet file ({type(e).__name__}: {e})") from None
        missing = [c for c in ("crop_id", "crop") if c not in t.column_names]
        if missing:
            raise CroprayError(f"{self.path}: queue lacks column(s) {', '.join(missing)} "
                               f"(columns: {', '.join(t.column_names[:12])}); make one with `cropray suggest`")
        if t.column("crop_id").null_count:
            raise CroprayError(f"{self.path}: {t.column('crop_id').null_count} rows have a null crop_id")
        if "rank" in t.column_names:
            t = t.take(pc.sort_indices(t, [("rank", "ascending")]))
        ids = [str(v) for v in t.column("crop_id").to_pylist()]
        seen, dup = set(), []
        for i in ids:
            (dup.append(i) if i in seen else seen.add(i))
        if dup:
            raise CroprayError(f"{self.path}: crop_id(s) listed twice in the queue: {', '.join(sorted(set(dup))[:10])}")
        self.table, self.ids = t, ids
        self.spec = crop_spec_from_schema(t.schema, source=str(self.path))
        self.index = {c: i for i, c in enumerate(ids)}
        self.feat = None
        if "features" in t.column_names and t.num_rows:
            f = t.column("features").combine_chunks()
            if pa.types.is_fixed_size_list(f.type):
                self.feat = f.flatten().to_numpy(zero_copy_only=False).reshape(t.num_rows, -1).astype(np.float32)
        self.info = {c: t.column(c).to_pylist() for c in INFO_COLUMNS if c in t.column_names}

    def __len__(self) -> int:
        return self.table.num_rows

    def crop(self, i: int) -> np.ndarray:
        """(H, W) float32 raw crop of row i; CroprayError if it cannot be decoded."""
        from cropray.archive import validate_decode

        x, check = validate_decode(self.table.slice(i, 1), self.spec)
        if not check.valid.all():
            raise CroprayError(f"{self.path}: row {i} (crop_id {self.ids[i]}): crop cannot be shown "
                               f"({check.reasons[0]})")
        return x[0, 0]

    def arrow_crop(self, i: int):
        return self.table.column("crop").slice(i, 1)

    def row_info(self, i: int) -> dict:
        out = {"position": i, "crop_id": self.ids[i]}
        for c, v in self.info.items():
            val = v[i]
            out[c] = float(val) if isinstance(val, float) else val
        return out

    def neighbours(self, i: int, k: int = NEIGHBOURS) -> list[int]:
        """Up to k other rows nearest to row i in the model's features (none without features)."""
        if self.feat is None or len(self) < 2:
            return []
        d = ((self.feat - self.feat[i]) ** 2).sum(1)  # (N,)
        d[i] = np.inf
        k = min(k, len(self) - 1)
        near = np.argpartition(d, k - 1)[:k]
        return [int(j) for j in near[np.argsort(d[near])]]
