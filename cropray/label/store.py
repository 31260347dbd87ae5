"""LABELS: a directory of small Parquet part files, one per answer, each durable before it counts.

    LABELS/a-00000001.parquet   one labelled crop: crop_id, crop, label (1 signal, 0 not), score, ...
    LABELS/_skip-00000002.json  a skipped crop (hidden from Parquet readers: `_` prefix)
    LABELS/_lock                held by the one `cropray label` serving this directory (cropray.outlock)

Why one file per answer: appending is then one atomic rename (write `.tmp`, fsync it, rename, fsync
the directory), so pandas, pyarrow and `cropray train` see a valid labelled set at every instant and
a kill at any point loses at most the answer whose response was never sent. Undo is the unlink of
the highest-numbered action (+ directory fsync). A restart rebuilds the state by listing the files.
Other Parquet files already in LABELS (e.g. the first 25 labels) count as answers given before.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cropray.errors import CroprayError

PART = re.compile(r"^a-(\d{8})\.parquet$")
SKIP = re.compile(r"^_skip-(\d{8})\.json$")


@dataclass
class Action:
    seq: int
    crop_id: str
    label: int | None  # None: skipped
    path: Path


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _durable_write(path: Path, write) -> None:
    """write(tmp_path) then fsync, rename into place, fsync the directory."""
    tmp = path.parent / f".{path.name}.tmp"
    write(tmp)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class LabelStore:
    """The answers in LABELS (caller holds LABELS' lock)."""

    def __init__(self, directory):
        from cropray.suggest.labels import label_map

        self.dir = Path(directory)
        if self.dir.exists() and not self.dir.is_dir():
            raise CroprayError(f"--out {self.dir} is a file; LABELS is a directory of Parquet part files")
        self.dir.mkdir(parents=True, exist_ok=True)
        for p in self.dir.glob(".*.tmp"):  # a write killed before its rename: never answered
            p.unlink()
        self.actions: list[Action] = []
        for p in sorted(self.dir.iterdir()):
            m, s = PART.match(p.name), SKIP.match(p.name)
            if s:
                cid = json.loads(p.read_text())["crop_id"]
                self.actions.append(Action(int(s.group(1)), str(cid), None, p))
            elif m:
                t = pq.read_table(p, columns=["crop_id", "label"])
                self.actions.append(Action(int(m.group(1)), str(t.column("crop_id")[0].as_py()),
                                           int(t.column("label")[0].as_py()), p))
        self.actions.sort(key=lambda a: a.seq)
        parquet = sorted(p for p in self.dir.rglob("*.parquet") if not p.name.startswith((".", "_")))
        # every labelled row here, ours and others'; a crop_id with two labels is refused (named)
        self.known = label_map(self.dir, files=[str(p) for p in parquet]) if parquet else {}

    def done_ids(self) -> set[str]:
        """crop_ids answered (labelled here or elsewhere in LABELS, or skipped)."""
        return set(self.known) | {a.crop_id for a in self.actions}

    def _next_seq(self) -> int:
        return self.actions[-1].seq + 1 if self.actions else 1

    def answer(self, crop_id: str, label: int, row: pa.Table) -> Action:
        """Append one label durably. `row`: a 1-row table with crop_id, crop and the queue's info."""
        seq = self._next_seq()
        path = self.dir / f"a-{seq:08d}.parquet"
        t = row.append_column("label", pa.array([int(label)], pa.int64()))
        t = t.append_column("labelled_at", pa.array([time.strftime("%Y-%m-%dT%H:%M:%S%z")], pa.string()))
        _durable_write(path, lambda tmp: pq.write_table(t, tmp))
        a = Action(seq, crop_id, int(label), path)
        self.actions.append(a)
        self.known[crop_id] = (int(label), str(path))
        return a

    def skip(self, crop_id: str) -> Action:
        seq = self._next_seq()
        path = self.dir / f"_skip-{seq:08d}.json"
        _durable_write(path, lambda tmp: Path(tmp).write_text(json.dumps({"crop_id": crop_id})))
        a = Action(seq, crop_id, None, path)
        self.actions.append(a)
        return a

    def undo(self) -> Action | None:
        """Remove the last answer (label or skip) durably; None when there is none of ours."""
        if not self.actions:
            return None
        a = self.actions.pop()
        a.path.unlink()
        _fsync_dir(self.dir)
        if a.label is not None and self.known.get(a.crop_id, (None, ""))[1] == str(a.path):
            del self.known[a.crop_id]
        return a

    def counts(self) -> dict:
        return {"labelled": sum(a.label is not None for a in self.actions),
                "skipped": sum(a.label is None for a in self.actions),
                "signal": sum(a.label == 1 for a in self.actions)}
