"""One writer per output directory: an exclusive `flock` on `DIR/_lock`, held for the whole job.

Why flock and not a PID file: the kernel drops the lock when the holding process dies, however it
dies (SIGKILL, OOM, a lost node's driver), so a killed run never leaves a stale lock behind and the
next run simply takes it. The file only carries who holds it (pid, host, start time, command) for
the refusal message. It is removed when the holder finishes, while still locked; a waiter that
locked a file which was removed or replaced meanwhile sees it (inode check) and tries again, so two
processes can never both believe they hold the same directory.

The descriptor is not inherited by child processes (Python's default, PEP 446): Ray's raylet and
workers started by a driver must not keep the lock alive once the driver is gone.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cropray.errors import CroprayError

LOCK_NAME = "_lock"
# A directory cropray cannot write into (read-only mount, no permission): no writer can be harmed.
READ_ONLY_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM)


class OutputBusy(CroprayError):
    """Another process holds the output directory (exit 2)."""


@dataclass
class OutputLock:
    """What `output_lock` yields: `held` is False only for a read-only directory (see there)."""

    directory: Path
    path: Path
    held: bool
    reason: str | None = None  # why not held: the OS error text


def lock_path(directory, *, beside: bool = False) -> Path:
    """`DIR/_lock`; `beside=True` gives `PARENT/.DIR.lock` for a directory replaced as a whole by rename
    (a model bundle), where a lock inside would move away with the old directory."""
    d = Path(directory).expanduser().absolute()
    return d.parent / f".{d.name}.lock" if beside else d / LOCK_NAME


def holder(path: Path) -> str:
    """'pid 123 on host since T (command)', from the lock file; what the refusal names."""
    try:
        info = json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "pid" not in info:
        return "a process that has not written its pid yet"
    return (f"pid {info.get('pid')} on {info.get('host', '?')} since {info.get('started', '?')}"
            + (f" ({info['command']})" if info.get("command") else ""))


def _open_locked(path: Path, directory: Path) -> int:
    """Open and lock `path`; OutputBusy if another process holds it. Returns the locked descriptor."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputBusy(f"{directory} is being written by another cropray run ({holder(path)}); "
                             "one writer per output directory: wait for it to finish, stop it, or give "
                             "another directory") from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the holder removed (or replaced) the file after we opened it: take the new one


def _write_holder(fd: int) -> None:
    info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join(["cropray", *sys.argv[1:]])[:300] if sys.argv else ""}
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
    except OSError:  # a full disk: the lock holds all the same, only the message loses the pid
        pass


@contextmanager
def output_lock(directory, *, beside: bool = False, read_only_ok: bool = False) -> Iterator[OutputLock]:
    """Hold the exclusive lock of output `directory` for the `with` block (created if missing).

    A second holder gets OutputBusy (exit 2) naming the directory and the holder's pid. With
    `read_only_ok`, a directory that cannot be written at all (read-only mount, no permission) yields
    an OutputLock with `held=False` instead of failing: nobody can write there, so a run that only
    reads (a finished, no-op rerun) is safe; the caller must refuse to write. Otherwise such a
    directory is a CroprayError naming it.
    """
    d = Path(directory).expanduser().absolute()
    path = lock_path(d, beside=beside)
    created: list[Path] = []
    fd, reason = None, None
    try:
        for p in reversed([path.parent, *path.parent.parents]):
            if not p.exists():
                p.mkdir()
                created.append(p)
        fd = _open_locked(path, d)
    except OSError as e:
        if not (e.errno in READ_ONLY_ERRNOS and read_only_ok and d.is_dir()):
            raise CroprayError(f"cannot write to {d} ({e.strerror}): give a writable output directory") from None
        reason = e.strerror
    if fd is None:
        yield OutputLock(d, path, held=False, reason=reason)
        return
    try:
        _write_holder(fd)
        yield OutputLock(d, path, held=True)
    finally:
        try:
            path.unlink()  # still locked: a waiter that opened it sees the inode gone and retries
        except OSError:
            pass
        os.close(fd)
        for p in reversed(created):  # directories this run made and left empty (it failed early)
            try:
                p.rmdir()
            except OSError:
                break


def claim_scratch(parent: Path, prefix: str) -> tuple[Path, int]:
    """A new scratch directory `parent/<prefix>XXXXXXXX`, marked in use by an exclusive flock on the
    directory itself (nothing written inside it). Returns (path, descriptor): close the descriptor
    after removing the directory. If this process dies, the kernel drops the flock and the next run's
    `remove_abandoned` removes the directory."""
    import tempfile

    while True:
        d = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # new and ours: nobody else can hold it yet
        try:
            if os.stat(d).st_ino == os.fstat(fd).st_ino:  # not removed by another run's cleanup meanwhile
                return d, fd
        except FileNotFoundError:
            pass
        os.close(fd)


def remove_abandoned(directory: Path) -> bool:
    """Remove a scratch directory of `claim_scratch` whose process is gone (its flock free, and no live
    writer holds a lock file `_lock` inside). Returns True if removed, False if in use or gone."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a live run holds it
        inner = Path(directory) / LOCK_NAME
        if inner.exists():
            try:
                with open(inner, "rb") as f:
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            except OSError:
                pass
        import shutil

        shutil.rmtree(directory, ignore_errors=True)
        return not Path(directory).exists()
    finally:
        os.close(fd)
