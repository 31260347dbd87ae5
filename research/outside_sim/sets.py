"""The named sets and their Parquet files, written with pyarrow in cropray's archive format.

Row i of a (kind, seed) set is drawn from its own generator seeded by (seed, kind, i): the same crop
whatever N is. Labels alternate 0, 1 by row, so every even-sized set is exactly balanced.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from research.outside_sim.crops import CropRecipe, make_crop

_USER = {"straight": 0.75, "chirp": 0.25}
SETS = {
    "labels": CropRecipe((5.0, 60.0), _USER),  # what a user labels
    "fresh": CropRecipe((6.0, 60.0), _USER),  # the next crops from the same sky
    "faint": CropRecipe((4.0, 12.0), _USER),
    "curved": CropRecipe((6.0, 60.0), {"curved": 0.4, "wander": 0.3, "wobble": 0.3}),
    # unlabelled, half signals, SNR down to 3 so that some signals are invisible to any screen
    "archive": CropRecipe((3.0, 60.0), {"straight": 0.6, "chirp": 0.15, "curved": 0.1, "wander": 0.08,
                                         "wobble": 0.07}),
}
KIND_CODE = {name: i + 1 for i, name in enumerate(SETS)}
ROWS_PER_FILE = 5000


def crop_rng(kind: str, seed: int, i: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), KIND_CODE[kind], int(i)])


def generate(kind: str, n: int, seed: int, start: int = 0) -> dict:
    """Rows start..start+n of a set: crops (n, 64, 64) float32 and the per-row columns."""
    if kind not in SETS:
        raise ValueError(f"--kind must be one of {', '.join(SETS)}, got {kind!r}")
    rows = [make_crop(crop_rng(kind, seed, i), i % 2, SETS[kind]) for i in range(start, start + n)]
    return {
        "crop_id": [f"outside-{kind}{seed}-{i:07d}" for i in range(start, start + n)],
        "crops": np.stack([r.power for r in rows]) if rows else np.zeros((0, 64, 64), np.float32),
        "label": np.array([r.label for r in rows], dtype=np.int8),
        "snr": np.array([r.snr for r in rows], dtype=np.float32),
        "track": [r.track for r in rows],
        "rfi": [r.rfi for r in rows],
    }


def _table(part: dict, labeled: bool) -> pa.Table:
    cols = {"crop_id": pa.array(part["crop_id"]),
            "crop": pa.FixedShapeTensorArray.from_numpy_ndarray(np.ascontiguousarray(part["crops"]))}
    if labeled:  # truth columns only in labelled sets; the archive is unlabelled
        cols.update(label=pa.array(part["label"]), snr=pa.array(part["snr"]),
                    track=pa.array(part["track"]), rfi=pa.array(part["rfi"]))
    return pa.table(cols)


def write_set(out: str | Path, kind: str, n: int, seed: int) -> list[str]:
    """Write `n` crops of set `kind` as OUT/part-NNNNN.parquet (renamed into place when complete)."""
    if n < 1:
        raise ValueError(f"--n must be >= 1, got {n}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for f, start in enumerate(range(0, n, ROWS_PER_FILE)):
        part = generate(kind, min(ROWS_PER_FILE, n - start), seed, start)
        path = out / f"part-{f:05d}.parquet"
        tmp = out / f".{path.name}.tmp"
        pq.write_table(_table(part, labeled=kind != "archive"), tmp, row_group_size=1024, compression="none")
        os.replace(tmp, path)
        paths.append(str(path))
    return paths
