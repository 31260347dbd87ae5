"""Resolve an archive argument (file, directory, glob or pyarrow-filesystem URI) into Parquet files.

Local directories are walked by cropray itself, not by pyarrow's recursive selector, for two
reasons: pyarrow follows a symlink loop (`sub/back -> ..`) until the kernel says ELOOP, listing the
same file dozens of times, and it raises UnicodeDecodeError on a file name that is not UTF-8.
Here every directory is entered once (by device and inode, whatever links lead to it), every file
is listed once (a link or hard link to a file already listed is an alias, not more data), and a
name that is not UTF-8 is set aside as unusable, with a printable form of its name.

Remote stores (S3) get bounded waits: a 5 s connect timeout, a 10 s request timeout (on Linux: a
request is abandoned once less than 1 byte/s arrived for 10 s) and 3 attempts, so a store that
accepts connections and never answers fails one metadata call in about 3 x 10 s, not after the SDK's
minutes of retries. Every error a store raises while an archive is resolved becomes an ArchiveError
(exit 2) naming the URI and carrying the store's own reason (e.g. AWS Error ACCESS_DENIED).
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.fs as pafs

from cropray.errors import ArchiveError

PARQUET_SUFFIXES = (".parquet", ".parq", ".pq")
_GLOB_CHARS = set("*?[")
# S3 waits (see the module docstring); the longest a resolve waits on a dead store is ~ATTEMPTS x REQUEST.
S3_CONNECT_TIMEOUT_S = 5.0
S3_REQUEST_TIMEOUT_S = 10.0
S3_ATTEMPTS = 3
NOT_UTF8 = "file name is not valid UTF-8 (pyarrow and Parquet tools need UTF-8 names); rename the file"


@dataclass(frozen=True)
class ArchiveFiles:
    """The Parquet files of one archive, on one filesystem."""

    filesystem: pafs.FileSystem
    paths: list[str]  # filesystem paths, sorted, each file once; what pyarrow/Ray are given
    root: str  # the argument as the user wrote it, for messages
    # (printable name, reason) of files found but unusable (a non-UTF-8 name); only when asked for
    unusable: list[tuple[str, str]] = field(default_factory=list)
    aliases: int = 0  # links to files already listed (and directories reached twice), skipped

    def uri(self, path: str) -> str:
        """A user-facing name for one file (a URI for remote filesystems)."""
        if isinstance(self.filesystem, pafs.LocalFileSystem):
            return path
        return f"{self.filesystem.type_name}://{path}"


def printable(path: str) -> str:
    """A name safe to print and to store as UTF-8: undecodable bytes shown as `\\xff`."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path).decode("utf-8", "backslashreplace")


def _utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _hidden(name: str) -> bool:
    # Same rule as pyarrow datasets / Spark: `_x` and `.x` are metadata, not data.
    return name.startswith("_") or name.startswith(".")


def _split_fs(path: str) -> tuple[pafs.FileSystem, str]:
    if "://" in path:
        try:
            fs, p = pafs.FileSystem.from_uri(path)
            return bounded(fs), p
        except Exception as e:  # pyarrow raises ArrowInvalid / OSError with its own text
            raise ArchiveError(f"cannot open filesystem for {printable(path)!r}: {e}") from None
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(path))


def bounded(fs: pafs.FileSystem) -> pafs.FileSystem:
    """`fs` with bounded connect/request timeouts and attempts where it is S3 (other stores as given).

    Rebuilt from the options `from_uri` parsed (credentials, endpoint, region, scheme: its pickled
    form), so nothing the URI or the AWS_* environment said is lost; timeouts already set (> 0) are kept.
    """
    if not isinstance(fs, pafs.S3FileSystem):
        return fs
    opts = dict(fs.__reduce__()[1][0])
    proxy = opts.get("proxy_options")
    if isinstance(proxy, dict) and not proxy.get("host"):
        opts.pop("proxy_options")  # "no proxy" comes back as port -1, which the constructor refuses
    for key, value in (("connect_timeout", S3_CONNECT_TIMEOUT_S), ("request_timeout", S3_REQUEST_TIMEOUT_S)):
        if not (opts.get(key) or 0) > 0:  # -1 = the SDK's default (1 s / 3 s, retried ~10 times)
            opts[key] = value
    return pafs.S3FileSystem(**opts, retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=S3_ATTEMPTS))


def store_error(e: Exception, uri: str) -> ArchiveError:
    """What a remote store's error (403, timeout, unknown bucket...) says to the user: the URI and the
    store's own reason, one line (exit 2)."""
    reason = " ".join(str(e).split()) or type(e).__name__
    return ArchiveError(f"{printable(uri)}: the store refused or did not answer ({reason})")


def _walk_local(base: str, *, skip_hidden: bool) -> tuple[list[str], int]:
    """Every file under `base` once, following links into directories but never around a loop.

    Returns (paths in sorted order, number of aliases skipped). Names come back as str with
    undecodable bytes as surrogates (os.fsdecode), so nothing here raises on a non-UTF-8 name.
    """
    seen_dirs: set[tuple[int, int]] = set()
    by_inode: dict[tuple[int, int], list[str]] = {}  # each file once, whatever names lead to it
    aliases = 0

    def fail(e: OSError):
        raise ArchiveError(f"{printable(str(e.filename))}: cannot list this directory ({e.strerror})")

    for dirpath, dirnames, filenames in os.walk(base, followlinks=True, onerror=fail):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen_dirs:  # reached again through a link (a loop): listed already
            dirnames[:] = []
            aliases += 1
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not (skip_hidden and _hidden(d)))
        for name in filenames:
            if skip_hidden and _hidden(name):
                continue
            p = os.path.join(dirpath, name)
            try:
                fst = os.stat(p)
            except OSError:  # a dangling link: nothing to read
                continue
            by_inode.setdefault((fst.st_dev, fst.st_ino), []).append(p)
    out = []
    for names in by_inode.values():
        # The file's own name where the walk saw it (not a link to it), else the first name in order.
        real = [q for q in names if os.path.realpath(q) == os.path.abspath(q)]
        out.append(min(real or names))
        aliases += len(names) - 1
    return sorted(out), aliases


def _list(fs: pafs.FileSystem, base: str, *, skip_hidden: bool) -> tuple[list[str], int]:
    """All files under `base` (recursive): (paths, aliases skipped)."""
    if isinstance(fs, pafs.LocalFileSystem):
        return _walk_local(base, skip_hidden=skip_hidden)
    out = []
    for info in fs.get_file_info(pafs.FileSelector(base, recursive=True)):
        if info.type != pafs.FileType.File:
            continue
        rel = info.path[len(base) :].lstrip("/")
        if skip_hidden and any(_hidden(part) for part in rel.split("/")):
            continue
        out.append(info.path)
    return sorted(out), 0


def _split_unusable(paths: list[str], keep_unusable: bool, root: str) -> tuple[list[str], list[tuple[str, str]]]:
    bad = [(printable(p), NOT_UTF8) for p in paths if not _utf8(p)]
    if bad and not keep_unusable:
        raise ArchiveError(f"{bad[0][0]}: {bad[0][1]}" + (f" (and {len(bad) - 1} more under {printable(root)})"
                                                          if len(bad) > 1 else ""))
    return [p for p in paths if _utf8(p)], bad


def resolve_archive(path: str, *, keep_unusable: bool = False) -> ArchiveFiles:
    """Return the Parquet files named by `path`, each file once.

    `path` may be a file, a directory (searched recursively for *.parquet, skipping `_`/`.` names,
    following links to directories but never around a loop), a glob (`data/*.parquet`,
    `s3://bucket/crops/2026-*/*.parquet`) or any URI pyarrow accepts. A file whose name is not
    UTF-8 raises ArchiveError naming it, unless `keep_unusable`: then it is listed in `unusable`
    (for `score` and `inspect`, which report it as a failed file and go on with the others).
    Raises ArchiveError naming the path if nothing matches.
    """
    if not path:
        raise ArchiveError("empty archive path")
    path = str(path)
    fs, p = _split_fs(path)
    if isinstance(fs, pafs.LocalFileSystem):
        return _resolve(fs, p, path, keep_unusable)
    try:
        return _resolve(fs, p, path, keep_unusable)
    except (OSError, pa.ArrowException) as e:  # 403, timeouts, DNS, unknown bucket: the store's words
        raise store_error(e, path) from None


def _resolve(fs: pafs.FileSystem, p: str, path: str, keep_unusable: bool) -> ArchiveFiles:
    if any(c in p for c in _GLOB_CHARS):
        parts = p.split("/")
        first = next(i for i, part in enumerate(parts) if any(c in part for c in _GLOB_CHARS))
        base = "/".join(parts[:first]) or "/"
        if _kind(fs, base) != pafs.FileType.Directory:
            raise ArchiveError(f"archive path does not exist: {printable(path)} (no directory {printable(base)})")
        listed, aliases = _list(fs, base, skip_hidden=False)
        matched = [q for q in listed if fnmatch.fnmatch(q, p)]
        if not matched:
            raise ArchiveError(f"no files match {printable(path)}")
        paths, bad = _split_unusable(matched, keep_unusable, path)
        return ArchiveFiles(fs, paths, path, bad, aliases)
    kind = _kind(fs, p)
    if kind == pafs.FileType.NotFound:
        raise ArchiveError(f"archive path does not exist: {printable(path)}")
    if kind == pafs.FileType.File:
        paths, bad = _split_unusable([p], keep_unusable, path)
        return ArchiveFiles(fs, paths, path, bad)
    listed, aliases = _list(fs, p.rstrip("/") or "/", skip_hidden=True)
    listed = [q for q in listed if q.endswith(PARQUET_SUFFIXES)]
    if not listed:
        raise ArchiveError(f"no Parquet files (*.parquet) under {printable(path)}")
    paths, bad = _split_unusable(listed, keep_unusable, path)
    return ArchiveFiles(fs, paths, path, bad, aliases)


def _kind(fs: pafs.FileSystem, p: str) -> pafs.FileType:
    # Locally by os.path: pyarrow raises on a path that is not UTF-8.
    if isinstance(fs, pafs.LocalFileSystem):
        return (pafs.FileType.Directory if os.path.isdir(p) else pafs.FileType.File if os.path.isfile(p)
                else pafs.FileType.NotFound)
    return fs.get_file_info(p).type
