"""Summarise an archive: files, rows, schema, crop encoding, label balance, invalid rows, duplicates."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cropray.archive.decode import validate_decode
from cropray.archive.files import printable, resolve_archive
from cropray.archive.read import file_spec
from cropray.archive.spec import CROP_ID
from cropray.errors import ArchiveError


class _Tally:
    """What a full scan adds up over every batch of every file: invalid-row reasons, label counts,
    the SNR range and the crop ids (for duplicate counting)."""

    def __init__(self) -> None:
        self.invalid: Counter = Counter()
        self.labels: Counter = Counter()
        self.snr_min, self.snr_max = np.inf, -np.inf
        self.ids: list[pa.Array] = []

    def scan(self, pf, spec) -> int:
        """Read every row of the open Parquet file `pf`; returns its invalid-row count."""
        names = pf.schema_arrow.names
        bad = 0
        for rb in pf.iter_batches(batch_size=32768):
            t = pa.Table.from_batches([rb])
            _, check = validate_decode(t, spec)
            self.invalid.update(check.counts())
            bad += check.n_invalid
            if "label" in names:
                vc = pc.value_counts(t.column("label"))
                for v, c in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()):
                    self.labels[str(int(v)) if v is not None else "null"] += c
            if "snr" in names:
                mm = pc.min_max(t.column("snr"))
                if mm["min"].is_valid:
                    self.snr_min = min(self.snr_min, mm["min"].as_py())
                    self.snr_max = max(self.snr_max, mm["max"].as_py())
            if CROP_ID in names:
                self.ids.append(t.column(CROP_ID).combine_chunks())
        return bad

    def summary(self) -> dict:
        dup_ids = dup_rows = 0
        if self.ids:
            vc = pc.value_counts(pa.chunked_array(self.ids).combine_chunks())
            counts = vc.field("counts").to_numpy()
            dup_ids = int((counts > 1).sum())
            dup_rows = int((counts[counts > 1] - 1).sum())
        return dict(
            invalid_rows=int(sum(self.invalid.values())),
            invalid=dict(self.invalid),
            duplicate_ids=dup_ids,
            duplicate_rows=dup_rows,
            labels=dict(self.labels) or None,
            snr_range=[self.snr_min, self.snr_max] if np.isfinite(self.snr_min) else None,
        )


def inspect_archive(path: str, *, crop_shape=None, scan: bool = True, progress: bool = False) -> dict:
    """Read every file's footer and (with scan) every row; returns a JSON-able summary dict.

    A file that cannot be read is listed under `failed`; if no file can be read, ArchiveError.
    """
    t0 = time.perf_counter()
    files = resolve_archive(path, keep_unusable=True)  # a non-UTF-8 name is a failed file, not a crash
    per_file = []
    failed = [{"file": name, "error": f"{name}: {why}"} for name, why in files.unusable]
    tally = _Tally()
    specs, schema_str = set(), None
    nbytes = 0
    it = files.paths
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="inspect", unit="file")
    for p in it:
        src = files.uri(p)
        try:
            pf, spec = file_spec(files, p, crop_shape)
        except ArchiveError as e:
            failed.append({"file": src, "error": str(e)})
            continue
        md = pf.metadata
        nbytes += files.filesystem.get_file_info(p).size or 0
        specs.add(spec.describe())
        schema_str = schema_str or str(pf.schema_arrow)
        entry = {"file": src, "rows": md.num_rows, "row_groups": md.num_row_groups, "crop": spec.describe()}
        if scan:
            try:
                entry["invalid"] = tally.scan(pf, spec)
            except Exception as e:
                failed.append({"file": src, "error": f"read failed ({type(e).__name__}: {e})"})
                continue
        per_file.append(entry)
    if not per_file:
        raise ArchiveError(f"no readable Parquet file in {printable(str(path))}: "
                           + "; ".join(f["error"] for f in failed))
    out = {
        "archive": printable(str(path)),
        "files": len(files.paths) + len(files.unusable),
        "aliases_skipped": files.aliases,
        "files_ok": len(per_file),
        "failed": failed,
        "rows": int(sum(f["rows"] for f in per_file)),
        "bytes": int(nbytes),
        "crop": sorted(specs),
        "schema": schema_str,
        "per_file": per_file,
        "scanned": scan,
        "seconds": round(time.perf_counter() - t0, 3),
    }
    if scan:
        out.update(tally.summary())
    return out
