"""Ray Data source over planned units: one read task per unit (cropray.scoring.frames.read_unit).

Why not `ray.data.read_parquet`: it bin-packs row groups of different files into blocks and gives
rows no row index, so neither the quarantine's row numbers nor the per-unit commit could be
derived from its output. Here every row carries its unit and row index (cropray.scoring.frames).
"""

from __future__ import annotations

import functools

import pyarrow as pa
import pyarrow.fs as pafs
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from cropray.scoring.frames import ERROR, ROW, UNIT, error_frame, frame_schema, read_unit  # noqa: F401
from cropray.scoring.plan import Unit


class UnitSource(Datasource):
    """One read task per unit; tasks of one source all yield frames of `schema`."""

    def __init__(self, units: list[Unit], fs: pafs.FileSystem, schema: pa.Schema, read_rows: int, row_bytes: int):
        super().__init__()
        self._units, self._fs, self._schema = units, fs, schema
        self._read_rows, self._row_bytes = read_rows, row_bytes

    def estimate_inmemory_data_size(self) -> int:
        return sum(u.rows for u in self._units) * self._row_bytes

    def get_read_tasks(self, parallelism: int, per_task_row_limit=None, data_context=None) -> list[ReadTask]:
        # One task per unit whatever `parallelism` asks: a unit is the commit granule, and Ray
        # splits a task's output into more blocks by itself when it wants more parallelism.
        return [
            ReadTask(
                functools.partial(read_unit, u, self._fs, self._schema, self._read_rows),
                BlockMetadata(num_rows=u.rows, size_bytes=u.rows * self._row_bytes, exec_stats=None,
                              input_files=[u.uri]),
                schema=self._schema,
            )
            for u in self._units
        ]

    def get_name(self) -> str:
        return "CropUnits"
