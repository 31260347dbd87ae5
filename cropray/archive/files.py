"""Resolve an archive argument (file, directory, glob or pyarrow-filesystem URI) into Parquet files."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass

import pyarrow.fs as pafs

from cropray.errors import ArchiveError

PARQUET_SUFFIXES = (".parquet", ".parq", ".pq")
_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class ArchiveFiles:
    """The Parquet files of one archive, on one filesystem."""

    filesystem: pafs.FileSystem
    paths: list[str]  # filesystem paths, sorted; what pyarrow/Ray are given
    root: str  # the argument as the user wrote it, for messages

    def uri(self, path: str) -> str:
        """A user-facing name for one file (a URI for remote filesystems)."""
        if isinstance(self.filesystem, pafs.LocalFileSystem):
            return path
        return f"{self.filesystem.type_name}://{path}"


def _hidden(name: str) -> bool:
    # Same rule as pyarrow datasets / Spark: `_x` and `.x` are metadata, not data.
    return name.startswith("_") or name.startswith(".")


def _split_fs(path: str) -> tuple[pafs.FileSystem, str]:
    if "://" in path:
        try:
            return pafs.FileSystem.from_uri(path)
        except Exception as e:  # pyarrow raises ArrowInvalid / OSError with its own text
            raise ArchiveError(f"cannot open filesystem for {path!r}: {e}") from None
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(path))


def _list_dir(fs: pafs.FileSystem, base: str) -> list[str]:
    sel = pafs.FileSelector(base, recursive=True)
    out = []
    for info in fs.get_file_info(sel):
        if info.type != pafs.FileType.File:
            continue
        rel = info.path[len(base) :].lstrip("/")
        if any(_hidden(part) for part in rel.split("/")):
            continue
        if info.path.endswith(PARQUET_SUFFIXES):
            out.append(info.path)
    return sorted(out)


def resolve_archive(path: str) -> ArchiveFiles:
    """Return the Parquet files named by `path`.

    `path` may be a file, a directory (searched recursively for *.parquet, skipping `_`/`.` names),
    a glob (`data/*.parquet`, `s3://bucket/crops/2026-*/*.parquet`) or any URI pyarrow accepts.
    Raises ArchiveError naming the path if nothing matches.
    """
    if not path:
        raise ArchiveError("empty archive path")
    fs, p = _split_fs(str(path))
    if any(c in p for c in _GLOB_CHARS):
        parts = p.split("/")
        first = next(i for i, part in enumerate(parts) if any(c in part for c in _GLOB_CHARS))
        base = "/".join(parts[:first]) or "/"
        if fs.get_file_info(base).type != pafs.FileType.Directory:
            raise ArchiveError(f"archive path does not exist: {path} (no directory {base})")
        sel = pafs.FileSelector(base, recursive=True)
        paths = sorted(
            i.path for i in fs.get_file_info(sel) if i.type == pafs.FileType.File and fnmatch.fnmatch(i.path, p)
        )
        if not paths:
            raise ArchiveError(f"no files match {path}")
        return ArchiveFiles(fs, paths, str(path))
    info = fs.get_file_info(p)
    if info.type == pafs.FileType.NotFound:
        raise ArchiveError(f"archive path does not exist: {path}")
    if info.type == pafs.FileType.File:
        return ArchiveFiles(fs, [p], str(path))
    paths = _list_dir(fs, p.rstrip("/"))
    if not paths:
        raise ArchiveError(f"no Parquet files (*.parquet) under {path}")
    return ArchiveFiles(fs, paths, str(path))
