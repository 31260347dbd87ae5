"""`fingerprint`: what identifies one Parquet file's content cheaply (a resumed scoring run and the
archive-learning summary both use it). Archive code: pyarrow only."""

from __future__ import annotations

import hashlib

from cropray.archive.files import ArchiveFiles


def fingerprint(files: ArchiveFiles, path: str) -> dict:
    """Size, modification time and sha256 of the Parquet footer (row groups, offsets, statistics).

    Cheap (one stat, one read of the footer) and enough to tell a file rewritten since an earlier
    run, even with the same rows and row groups: its footer (compressed sizes, statistics) or at
    least its mtime differs.
    """
    info = files.filesystem.get_file_info(path)
    with files.filesystem.open_input_file(path) as f:
        size = f.size()
        f.seek(max(0, size - 8))
        tail = f.read(8)
        n = int.from_bytes(tail[:4], "little") if len(tail) == 8 else 0
        f.seek(max(0, size - 8 - n))
        footer = f.read(min(n, size - 8)) + tail
    return {"size": size, "mtime_ns": info.mtime_ns, "footer_sha256": hashlib.sha256(footer).hexdigest()}
