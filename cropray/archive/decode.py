"""Row validation and zero-copy decoding of a batch of crops into (N, 1, H, W) float32.

No Python work per row: everything is computed on the Arrow buffers with numpy.

Copies made by `decode_valid` (the hot path of scoring):
  * the Arrow child buffer is viewed, never copied (`.to_numpy(zero_copy_only=False)` is zero-copy
    for a null-free numeric child; offsets are applied by slicing, because `.values` ignores them);
  * float32 + every row valid + one chunk: 0 copies (a read-only view is returned);
  * any other dtype: 1 copy (the cast to float32);
  * some rows invalid, or a variable-length list: 1 copy (the gather of valid rows), +1 for a cast;
  * a batch of several chunks: +1 (`combine_chunks`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from cropray.archive.spec import CROP, CROP_ID, SUPPORTED_DTYPES, CropSpec

# Reason codes, in priority order: a row gets the first that applies.
MISSING_CROP_ID = "missing_crop_id"
NULL_CROP = "null_crop"
UNSUPPORTED_DTYPE = "unsupported_dtype"
WRONG_LENGTH = "wrong_length"
NON_FINITE = "non_finite"
REASONS = (MISSING_CROP_ID, NULL_CROP, UNSUPPORTED_DTYPE, WRONG_LENGTH, NON_FINITE)


@dataclass
class BatchCheck:
    """Per-row validity of one batch. `reasons[i]` is None for a valid row, else a reason code."""

    valid: np.ndarray  # (B,) bool
    reasons: np.ndarray  # (B,) object: None | str

    @property
    def n_invalid(self) -> int:
        return int(len(self.valid) - self.valid.sum())

    def counts(self) -> dict[str, int]:
        """{reason: count} over the invalid rows."""
        bad = self.reasons[~self.valid]
        if len(bad) == 0:
            return {}
        keys, n = np.unique(bad.astype(str), return_counts=True)
        return {str(k): int(c) for k, c in zip(keys, n)}


def _column(batch, name: str) -> pa.Array:
    col = batch.column(name)
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col


def _storage(col: pa.Array) -> pa.Array:
    return col.storage if isinstance(col, pa.ExtensionArray) else col


def _mark(reasons: np.ndarray, mask: np.ndarray, code: str) -> None:
    """Give `code` to rows in `mask` that have no reason yet."""
    free = mask & np.equal(reasons, None)
    reasons[free] = code


def _id_missing(batch, n: int) -> np.ndarray:
    if CROP_ID not in batch.schema.names:
        return np.ones(n, dtype=bool)
    ids = _column(batch, CROP_ID)
    missing = ids.is_null().to_numpy(zero_copy_only=False)
    if pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type):
        empty = pa.compute.equal(pa.compute.utf8_length(ids), 0).fill_null(True)
        missing |= empty.to_numpy(zero_copy_only=False)
    return missing


def _values_2d(storage: pa.Array, spec: CropSpec) -> tuple[np.ndarray, np.ndarray | None]:
    """Values of each row as numpy. Fixed-size: (B, L) view. Var-list: (flat values, offsets (B+1,))."""
    child = storage.values
    if isinstance(storage, pa.FixedSizeListArray):
        L = storage.type.list_size
        child = child.slice(storage.offset * L, len(storage) * L)
        # Null slots inside a crop become NaN (floats) or force a float copy (ints): caught as non_finite.
        flat = child.to_numpy(zero_copy_only=False)
        return flat.reshape(len(storage), L), None
    offsets = storage.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    return child.to_numpy(zero_copy_only=False), offsets


def validate_decode(batch, spec: CropSpec, require_id: bool = True) -> tuple[np.ndarray, BatchCheck]:
    """Validate every row and decode the valid ones: returns ((n_valid, 1, H, W) float32, BatchCheck)."""
    n = batch.num_rows
    reasons = np.full(n, None, dtype=object)
    H, W = spec.shape
    L = spec.length
    empty = np.zeros((0, 1, H, W), np.float32)
    if require_id:
        _mark(reasons, _id_missing(batch, n), MISSING_CROP_ID)
    if n == 0:
        return empty, BatchCheck(np.zeros(0, bool), reasons)
    storage = _storage(_column(batch, CROP))
    _mark(reasons, storage.is_null().to_numpy(zero_copy_only=False), NULL_CROP)
    t = storage.type
    is_list = pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
    if not is_list or t.value_type not in SUPPORTED_DTYPES:
        # Several files can disagree on the crop type; their rows are quarantined, not fatal.
        _mark(reasons, np.ones(n, bool), UNSUPPORTED_DTYPE)
        return empty, BatchCheck(np.equal(reasons, None), reasons)
    vals, offsets = _values_2d(storage, spec)
    if offsets is None:
        if vals.shape[1] != L:
            _mark(reasons, np.ones(n, bool), WRONG_LENGTH)
            return empty, BatchCheck(np.equal(reasons, None), reasons)
        rows = vals  # (B, L) view
        ok = np.equal(reasons, None)
        if vals.dtype.kind == "f":
            finite = np.isfinite(rows).all(axis=1)  # (B,)
            _mark(reasons, ~finite, NON_FINITE)
            ok = np.equal(reasons, None)
        out = rows if ok.all() else rows[ok]  # gather: 1 copy only when some rows are bad
    else:
        lengths = np.diff(offsets)
        _mark(reasons, lengths != L, WRONG_LENGTH)
        ok_len = np.equal(reasons, None)
        starts = offsets[:-1][ok_len]
        # (n_ok, L) gather of the rows of the right length: one vectorised copy.
        out = vals[starts[:, None] + np.arange(L)[None, :]] if len(starts) else np.zeros((0, L), vals.dtype)
        if out.dtype.kind == "f" and len(out):
            finite = np.isfinite(out).all(axis=1)
            idx = np.flatnonzero(ok_len)
            _mark(reasons, np.isin(np.arange(n), idx[~finite]), NON_FINITE)
        ok = np.equal(reasons, None)
        out = out[ok[ok_len]] if not ok[ok_len].all() else out
    if out.dtype != np.float32:
        out = out.astype(np.float32)  # the cast copy (float16/uint8/uint16/float64 inputs)
    return out.reshape(-1, 1, H, W), BatchCheck(ok, reasons)
