"""Bounded candidate pools: the best `capacity` rows by a priority, kept while blocks stream by.

Each pool holds at most `capacity` rows (crop_id, where it lives, score, track statistic, features):
adding a block concatenates and keeps the top `capacity` by priority with one argpartition, so the
driver's memory is O(capacity x features) however large the archive. The uniform "diverse" pool is a
bottom-k sample by random key, which is a uniform sample without replacement of everything seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Rows:
    """Columns of candidate rows; every array has the same length N."""

    crop_id: np.ndarray  # (N,) object: the archive's ids (str or int)
    unit: np.ndarray  # (N,) int32: index into the scoring plan's units (which file)
    row: np.ndarray  # (N,) int64: row index in that file
    score: np.ndarray  # (N,) float32: the model's score
    track: np.ndarray  # (N,) float32: the label-free track statistic
    feat: np.ndarray  # (N, d) float32: projected model features

    def __len__(self) -> int:
        return len(self.crop_id)

    def take(self, idx) -> Rows:
        return Rows(*(getattr(self, f)[idx] for f in ("crop_id", "unit", "row", "score", "track", "feat")))

    @staticmethod
    def concat(parts: list[Rows]) -> Rows:
        return Rows(*(np.concatenate([getattr(p, f) for p in parts])
                      for f in ("crop_id", "unit", "row", "score", "track", "feat")))


class TopPool:
    """The `capacity` rows of highest priority seen so far (ties: first seen wins)."""

    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self.rows: Rows | None = None
        self.priority = np.zeros(0, np.float64)

    def add(self, rows: Rows, priority: np.ndarray) -> None:
        keep = np.isfinite(priority)
        if not keep.any():
            return
        rows, priority = rows.take(np.flatnonzero(keep)), priority[keep]
        if self.rows is not None:
            rows, priority = Rows.concat([self.rows, rows]), np.concatenate([self.priority, priority])
        if len(priority) > self.capacity:
            top = np.argpartition(-priority, self.capacity - 1)[: self.capacity]
            top.sort()  # keep arrival order among the kept rows: deterministic results
            rows, priority = rows.take(top), priority[top]
        self.rows, self.priority = rows, priority

    def __len__(self) -> int:
        return 0 if self.rows is None else len(self.rows)

    def ordered(self) -> tuple[Rows | None, np.ndarray]:
        """(rows, priority) best first."""
        if self.rows is None:
            return None, self.priority
        o = np.argsort(-self.priority, kind="stable")
        return self.rows.take(o), self.priority[o]
