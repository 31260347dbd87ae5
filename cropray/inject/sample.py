"""Draw background crops from an archive: a random spread of row groups across its files, streamed.

Memory holds the budget's crops and one read batch, never a whole file: row groups are visited in a
seeded random order until they hold `oversample` x the budget rows (and at least MIN_GROUPS groups,
so a small budget still spreads over files), then rows are picked uniformly
within them and read batch by batch (only the `crop` and `crop_id` columns). Rows are validated and
decoded by `cropray.archive.validate_decode` (bad rows skipped and counted by reason); a file whose
footer or data cannot be read is skipped and named with its error. Same (archive, budget, seed) ->
same crops.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from cropray.archive import CROP, CROP_ID, ArchiveFiles, file_spec, resolve_archive, validate_decode
from cropray.errors import ArchiveError, CroprayError

READ_BATCH = 4096  # rows per streamed read: ~64 MB of 64x64 float32 at most
MIN_GROUPS = 16  # row groups read at least (when there are that many): a small budget still spreads


@dataclass
class Backgrounds:
    """Background crops drawn from an archive, and what happened on the way."""

    x: np.ndarray  # (N, 1, H, W) float32 raw power, in the archive's own units
    crop_id: np.ndarray  # (N,) object; "<file>#<row>" where the archive has no crop_id
    files: list = field(default_factory=list)  # every readable file (URI)
    failed: list = field(default_factory=list)  # [(file, error)] unreadable files, skipped
    invalid: dict = field(default_factory=dict)  # reason -> count among the sampled rows
    rows_in_archive: int = 0  # rows of the readable files (from their footers)
    row_groups_read: int = 0
    fingerprint: str = ""  # sha256 over every file's name, size and footer

    def __len__(self) -> int:
        return len(self.x)

    def summary(self) -> dict:
        return {"drawn": len(self), "rows_in_archive": self.rows_in_archive, "files": len(self.files),
                "files_failed": [{"file": f, "error": e} for f, e in self.failed], "invalid_rows": dict(self.invalid),
                "row_groups_read": self.row_groups_read, "archive_fingerprint": self.fingerprint}


@dataclass
class _File:
    uri: str
    path: str
    groups: list  # rows per row group
    has_id: bool
    shape: tuple  # (H, W)


def _survey(files: ArchiveFiles, crop_shape, expect_shape) -> tuple[list[_File], list, str]:
    """Footers of every file: row groups, schema checks; unreadable files set aside with their error."""
    from cropray.archive.fingerprint import fingerprint  # size + mtime + footer sha256: pyarrow only

    usable, failed, h = [], [], hashlib.sha256()
    for p in files.paths:
        uri = files.uri(p)
        try:
            pf, spec = file_spec(files, p, crop_shape)
            fp = fingerprint(files, p)
        except (ArchiveError, OSError) as e:
            failed.append((uri, str(e)))
            continue
        if expect_shape is not None and tuple(spec.shape) != tuple(expect_shape):
            raise CroprayError(
                f"archive crops are {spec.shape[0]}x{spec.shape[1]} (in {uri}) but the labelled crops are "
                f"{expect_shape[0]}x{expect_shape[1]}: --archive must come from the same detector and crop size")
        if usable and tuple(spec.shape) != usable[0].shape:
            raise CroprayError(f"archive crops are {spec.shape[0]}x{spec.shape[1]} in {uri} but "
                               f"{usable[0].shape[0]}x{usable[0].shape[1]} in {usable[0].uri}")
        md = pf.metadata
        usable.append(_File(uri, p, [md.row_group(i).num_rows for i in range(md.num_row_groups)],
                            CROP_ID in pf.schema_arrow.names, tuple(spec.shape)))
        h.update(f"{uri}\0{fp['size']}\0{fp['footer_sha256']}\n".encode())
    failed.extend((name, why) for name, why in files.unusable)
    return usable, failed, h.hexdigest()


def _plan(usable: list[_File], n: int, oversample: float, rng) -> tuple[list[tuple[int, int, np.ndarray]], int]:
    """[(file index, row group, sorted local rows to take)] and the rows they hold in all."""
    groups = [(fi, g, rows) for fi, f in enumerate(usable) for g, rows in enumerate(f.groups) if rows > 0]
    if not groups:
        return [], 0
    order = rng.permutation(len(groups))
    rows = np.array([groups[i][2] for i in order])
    # groups until they hold >= oversample x n rows, and at least MIN_GROUPS of them (spread over files)
    take = max(int(np.searchsorted(np.cumsum(rows), oversample * n)) + 1, MIN_GROUPS)
    chosen = sorted(groups[i] for i in order[:take])
    total = sum(r for _, _, r in chosen)
    k = min(total, int(np.ceil(n * 1.05)) + 16)  # a few spare rows for invalid ones
    picks = np.sort(rng.choice(total, size=k, replace=False))
    starts = np.cumsum([0] + [r for _, _, r in chosen])
    plan = []
    for (fi, g, r), s in zip(chosen, starts[:-1]):
        local = picks[(picks >= s) & (picks < s + r)] - s
        if len(local):
            plan.append((fi, g, local))
    return plan, k


def _read_group(f: _File, pf, g: int, local: np.ndarray, spec, base_row: int):
    """Decoded valid crops, their ids and the BatchCheck counts of the picked rows of one row group."""
    cols = [CROP, CROP_ID] if f.has_id else [CROP]
    xs, ids, bad = [], [], Counter()
    offset = 0
    for rb in pf.iter_batches(batch_size=READ_BATCH, row_groups=[g], columns=cols):
        sel = local[(local >= offset) & (local < offset + rb.num_rows)] - offset
        if len(sel):
            t = pa.Table.from_batches([rb]).take(pa.array(sel))
            x, check = validate_decode(t, spec, require_id=f.has_id)
            bad.update(check.counts())
            xs.append(x)
            if f.has_id:
                ids.append(t.column(CROP_ID).to_numpy(zero_copy_only=False)[check.valid].astype(object))
            else:
                ids.append(np.array([f"{f.uri}#{base_row + offset + i}" for i in sel[check.valid]], dtype=object))
        offset += rb.num_rows
    return xs, ids, bad


def sample_backgrounds(archive, n: int, seed: int = 0, *, crop_shape=None, expect_shape=None,
                       oversample: float = 2.0) -> Backgrounds:
    """Up to n valid crops drawn at random across the archive's files (module docstring).

    expect_shape (H, W): the labelled crops' shape; an archive file of another shape is a
    CroprayError naming both. Fewer valid rows than n: all of them (the caller warns).
    """
    files = archive if isinstance(archive, ArchiveFiles) else resolve_archive(archive, keep_unusable=True)
    usable, failed, fp = _survey(files, crop_shape, expect_shape)
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(0x1A7,)))
    plan, _ = _plan(usable, int(n), oversample, rng)
    pieces, invalid, broken = [], Counter(), set()  # pieces: (file index, crops, ids)
    cur, pf, spec = None, None, None
    for fi, g, local in plan:
        f = usable[fi]
        if fi in broken:
            continue
        try:
            if cur != fi:
                pf, spec = file_spec(files, f.path, crop_shape)
                cur = fi
            gx, gid, bad = _read_group(f, pf, g, local, spec, sum(f.groups[:g]))
        except Exception as e:  # a read failing mid-file: the file is skipped and its rows dropped
            failed.append((f.uri, f"read failed ({type(e).__name__}: {e})"))
            broken.add(fi)
            continue
        pieces.extend((fi, a, b) for a, b in zip(gx, gid))
        invalid.update(bad)
    pieces = [p for p in pieces if p[0] not in broken]
    shape = tuple(expect_shape or (usable[0].shape if usable else (64, 64)))
    x = np.concatenate([p[1] for p in pieces]) if pieces else np.zeros((0, 1, *shape), np.float32)
    crop_id = np.concatenate([p[2] for p in pieces]) if pieces else np.zeros(0, object)
    keep = np.sort(rng.permutation(len(x))[: int(n)]) if len(x) > n else np.arange(len(x))
    return Backgrounds(x=np.ascontiguousarray(x[keep]), crop_id=crop_id[keep],
                       files=[f.uri for f in usable if usable.index(f) not in broken], failed=failed,
                       invalid=dict(invalid), rows_in_archive=sum(sum(f.groups) for f in usable),
                       row_groups_read=len(plan), fingerprint=fp)
