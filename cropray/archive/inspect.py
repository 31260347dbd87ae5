"""Summarise an archive: files, rows, schema, crop encoding, label balance, invalid rows, duplicates."""

from __future__ import annotations

import time
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cropray.archive.decode import BatchCheck, validate_decode
from cropray.archive.files import printable, resolve_archive, store_error
from cropray.archive.read import file_spec
from cropray.archive.spec import CROP_ID
from cropray.errors import ArchiveError

LABEL_NULL, LABEL_NOT_01 = "label_null", "label_not_0_or_1"


def check_label_type(t: pa.DataType, source: str) -> None:
    """The same rule as training's reader: a label column is int, bool or float (1 = signal, 0 = not)."""
    if not (pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_floating(t) or pa.types.is_null(t)):
        raise ArchiveError(f"{source}: column 'label' has type {t}; expected int or bool (1 = signal, 0 = not)")


def with_label_reasons(check: BatchCheck, label: pa.ChunkedArray) -> BatchCheck:
    """`check` with rows whose crop is valid but whose label is null or not 0/1 marked invalid
    (reasons `label_null`, `label_not_0_or_1`): what `cropray train` refuses. A row is counted once,
    under its crop's reason when both are wrong."""
    y = label.to_numpy(zero_copy_only=False)  # (B,) numbers; nulls come back as NaN or None
    null = label.is_null().to_numpy(zero_copy_only=False)
    not01 = ~null & ~np.isin(np.where(null, 0, y).astype(np.float64), [0.0, 1.0])
    valid, reasons = check.valid.copy(), check.reasons.copy()
    for mask, why in ((null, LABEL_NULL), (not01, LABEL_NOT_01)):
        hit = valid & mask
        reasons[hit] = why
        valid &= ~hit
    return BatchCheck(valid=valid, reasons=reasons)


def _label_key(v) -> str:
    if v is None:
        return "null"
    return str(int(v)) if float(v).is_integer() else repr(float(v))


class _Tally:
    """What a full scan adds up over every batch of every file: invalid-row reasons, label counts,
    the SNR range and the crop ids (for duplicate counting)."""

    def __init__(self) -> None:
        self.invalid: Counter = Counter()
        self.labels: Counter = Counter()
        self.snr_min, self.snr_max = np.inf, -np.inf
        self.ids: list[pa.Array] = []

    def scan(self, pf, spec, source: str) -> int:
        """Read every row of the open Parquet file `pf` (named `source`); returns its invalid-row count.

        A label column of a type that cannot hold 0/1 is an ArchiveError naming the file and column."""
        names = pf.schema_arrow.names
        bad = 0
        if "label" in names:
            check_label_type(pf.schema_arrow.field("label").type, source)
        for rb in pf.iter_batches(batch_size=32768):
            t = pa.Table.from_batches([rb])
            _, check = validate_decode(t, spec)
            if "label" in names:
                check = with_label_reasons(check, t.column("label"))
                vc = pc.value_counts(t.column("label"))
                for v, c in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()):
                    self.labels[_label_key(v)] += c
            self.invalid.update(check.counts())
            bad += check.n_invalid
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
        try:
            nbytes += files.filesystem.get_file_info(p).size or 0
        except OSError as e:  # a remote store that stopped answering after the footer was read
            failed.append({"file": src, "error": str(store_error(e, src))})
            continue
        specs.add(spec.describe())
        schema_str = schema_str or str(pf.schema_arrow)
        entry = {"file": src, "rows": md.num_rows, "row_groups": md.num_row_groups, "crop": spec.describe()}
        if scan:
            try:
                entry["invalid"] = tally.scan(pf, spec, src)
            except ArchiveError as e:  # e.g. a label column of strings: the message names the column
                failed.append({"file": src, "error": str(e)})
                continue
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
