"""Streaming reads of crop archives, and whole labelled sets into memory (they are small)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cropray.archive.decode import validate_decode
from cropray.archive.files import ArchiveFiles, resolve_archive
from cropray.archive.spec import CROP_ID, CropSpec, crop_spec_from_schema
from cropray.errors import ArchiveError


def open_parquet(files: ArchiveFiles, path: str) -> pq.ParquetFile:
    """Open one file's footer; ArchiveError naming the file if it is not readable Parquet."""
    try:
        return pq.ParquetFile(files.filesystem.open_input_file(path))
    except Exception as e:
        raise ArchiveError(f"{files.uri(path)}: not a readable Parquet file ({type(e).__name__}: {e})") from None


def file_spec(files: ArchiveFiles, path: str, crop_shape=None) -> tuple[pq.ParquetFile, CropSpec]:
    pf = open_parquet(files, path)
    return pf, crop_spec_from_schema(pf.schema_arrow, crop_shape, source=files.uri(path))


def iter_tables(
    path, *, columns=None, batch_rows: int = 65536, crop_shape=None
) -> Iterator[tuple[str, CropSpec, pa.Table]]:
    """Yield (file, CropSpec, table) batches of at most `batch_rows`, one file at a time (bounded memory)."""
    files = path if isinstance(path, ArchiveFiles) else resolve_archive(path)
    for p in files.paths:
        pf, spec = file_spec(files, p, crop_shape)
        try:
            for rb in pf.iter_batches(batch_size=batch_rows, columns=columns):
                yield files.uri(p), spec, pa.Table.from_batches([rb])
        except ArchiveError:
            raise
        except Exception as e:
            raise ArchiveError(f"{files.uri(p)}: read failed ({type(e).__name__}: {e})") from None


@dataclass
class LabeledSet:
    """A labelled set decoded into memory. Invalid rows are skipped and counted in `invalid`."""

    x: np.ndarray  # (N, 1, H, W) float32 raw power
    y: np.ndarray | None  # (N,) int64 in {0, 1}
    snr: np.ndarray | None  # (N,) float32, NaN where unknown
    crop_id: np.ndarray  # (N,) object
    n_read: int
    invalid: dict = field(default_factory=dict)  # reason -> count
    files: list = field(default_factory=list)
    spec: CropSpec | None = None
    duplicates: int = 0  # rows whose crop_id appeared before

    def class_counts(self) -> dict[int, int]:
        if self.y is None:
            return {}
        return {0: int((self.y == 0).sum()), 1: int((self.y == 1).sum())}


def _labels(table: pa.Table, source: str, offset: int) -> np.ndarray:
    col = table.column("label")
    t = col.type
    if not (pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_floating(t)):
        raise ArchiveError(f"{source}: column 'label' has type {t}; expected int or bool (1 = signal, 0 = not)")
    if col.null_count:
        row = offset + int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise ArchiveError(f"{source}: row {row}: label is null; labels must be 0 or 1")
    y = col.to_numpy(zero_copy_only=False)
    bad = ~np.isin(y, [0, 1])
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ArchiveError(
            f"{source}: row {offset + row}: label {y[row].item()!r} is not 0 or 1 ({int(bad.sum())} such rows); "
            "labels must be 1 = signal, 0 = not"
        )
    return y.astype(np.int64)


def read_labeled(path, *, crop_shape=None, require_label: bool = True) -> LabeledSet:
    """Read a labelled (or, with require_label=False, any) archive fully into memory.

    Invalid rows (see `cropray.archive.REASONS`) are skipped and counted. A file without `crop_id`
    gets ids `<file>#<row>`; a missing `label` column is an ArchiveError naming the file.
    """
    files = path if isinstance(path, ArchiveFiles) else resolve_archive(path)
    xs, ys, snrs, ids = [], [], [], []
    any_snr = False
    invalid: Counter = Counter()
    n_read = 0
    spec0 = None
    for p in files.paths:
        src = files.uri(p)
        pf, spec = file_spec(files, p, crop_shape)
        if spec0 is not None and spec.shape != spec0.shape:
            raise ArchiveError(f"{src}: crop shape {spec.shape} differs from {spec0.shape} in {files.uri(files.paths[0])}")
        spec0 = spec0 or spec
        names = pf.schema_arrow.names
        if require_label and "label" not in names:
            raise ArchiveError(f"{src}: no 'label' column (columns: {', '.join(names[:12])}); labelled sets need label = 1 (signal) or 0")
        has_id = CROP_ID in names
        offset = 0
        for rb in pf.iter_batches(batch_size=65536):
            t = pa.Table.from_batches([rb])
            x, check = validate_decode(t, spec, require_id=has_id)
            invalid.update(check.counts())
            ok = check.valid
            xs.append(x)
            if "label" in names:
                ys.append(_labels(t, src, offset)[ok])
            # a file without `snr` contributes NaN (unknown) rows, so the column stays aligned with x
            # when a folder mixes files with and without it (e.g. synth output next to labelled answers)
            if "snr" in names:
                snrs.append(t.column("snr").cast(pa.float32()).fill_null(np.nan).to_numpy(zero_copy_only=False)[ok])
                any_snr = True
            else:
                snrs.append(np.full(int(ok.sum()), np.nan, np.float32))
            if has_id:
                ids.append(t.column(CROP_ID).to_numpy(zero_copy_only=False)[ok])
            else:
                ids.append(np.array([f"{src}#{offset + i}" for i in np.flatnonzero(ok)], dtype=object))
            offset += t.num_rows
        n_read += offset
    x = np.concatenate(xs) if xs else np.zeros((0, 1, 64, 64), np.float32)
    crop_id = np.concatenate(ids) if ids else np.zeros(0, object)
    dups = 0
    if len(crop_id):
        vc = pc.value_counts(pa.array(crop_id))
        counts = vc.field("counts").to_numpy()
        dups = int((counts[counts > 1] - 1).sum())
    return LabeledSet(
        x=np.ascontiguousarray(x),
        y=np.concatenate(ys) if ys else None,
        snr=np.concatenate(snrs) if any_snr else None,
        crop_id=crop_id,
        n_read=n_read,
        invalid=dict(invalid),
        files=[files.uri(p) for p in files.paths],
        spec=spec0,
        duplicates=dups,
    )
