"""Plan a scoring run from the Parquet footers alone: which files are usable, and the commit units.

A *unit* is a run of whole row groups of one file (at most ~`unit_rows` rows, at least one row
group). It is what one Ray read task reads and what the driver commits as one output file, so its
key must be the same on every rerun: `<file stem>-<sha1(file uri)[:8]>-g<first row group>`.

Every file's footer is opened before anything runs: an unreadable file, a file without a usable
`crop` column, or crops of another shape than the model's are marked failed here (the rest still
run). Types are unified across files so every output file has the same schema: `crop_id` stays
int64 when every file has integer ids, else becomes string; `--keep` columns are promoted with
pyarrow's permissive unification.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import pyarrow as pa

from cropray.archive import CROP, CROP_ID, ArchiveFiles, CropSpec, crop_spec_from_schema, open_parquet
from cropray.archive.fingerprint import fingerprint
from cropray.archive.spec import VAR_LIST
from cropray.errors import ArchiveError, ConfigError


@dataclass
class Unit:
    """Whole row groups [rg_start, rg_stop) of one file: one read task, one committed output file."""

    key: str
    path: str  # filesystem path (what pyarrow opens)
    uri: str  # user-facing name
    rg_start: int
    rg_stop: int
    rows: int
    group: str  # crop Arrow type: units of one group share one pipeline (Ray cannot mix them in a batch)
    first_row: int = 0  # row index in the file of the unit's first row
    index: int = -1  # position in the plan; the `_unit` column value

    def describe(self) -> dict:
        return {"file": self.uri, "row_groups": [self.rg_start, self.rg_stop], "rows": self.rows}


@dataclass
class FileInfo:
    uri: str
    path: str
    rows: int | None = None
    error: str | None = None  # set when the file is unusable (failed before running)
    spec: CropSpec | None = None
    has_id: bool = False
    units: list[str] = field(default_factory=list)
    fingerprint: dict | None = None  # size, mtime_ns, footer sha256: what a resumed run checks


@dataclass
class Plan:
    files: list[FileInfo]
    units: list[Unit]
    id_type: pa.DataType
    keep_fields: list[pa.Field]
    specs: dict[str, CropSpec]  # group -> spec
    crop_types: dict[str, pa.DataType]  # group -> Arrow type of its crop column

    def output_schema(self) -> pa.Schema:
        """Schema of every committed scores file."""
        return pa.schema(
            [pa.field(CROP_ID, self.id_type), pa.field("score", pa.float32()), pa.field("is_signal", pa.bool_()),
             pa.field("model_id", pa.string())] + list(self.keep_fields)
        )

    def quarantine_schema(self) -> pa.Schema:
        return pa.schema([pa.field(CROP_ID, self.id_type), pa.field("source_file", pa.string()),
                          pa.field("row", pa.int64()), pa.field("reason", pa.string())])

    unit_rows: int = 0

    def fingerprints(self) -> dict[str, dict]:
        """file -> fingerprint of every usable input file (recorded in the manifest)."""
        return {f.uri: f.fingerprint for f in self.files if f.fingerprint is not None}

    def signature(self) -> dict:
        """What must not change between a run and its resumption: output schema and unit cutting."""
        return {"output_schema": [f"{f.name}: {f.type}" for f in self.output_schema()], "unit_rows": self.unit_rows}


def _unit_key(uri: str, rg_start: int) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", uri.rstrip("/").rsplit("/", 1)[-1])
    stem = re.sub(r"\.(parquet|parq|pq)$", "", stem)[:60].lstrip("._") or "file"
    digest = hashlib.sha1(uri.encode()).hexdigest()[:8]
    return f"{stem}-{digest}-g{rg_start:05d}"


def _spec(schema: pa.Schema, model_shape, uri: str) -> CropSpec:
    """The file's own crop shape; the model's where the file has none (variable lists, non-square)."""
    try:
        spec = crop_spec_from_schema(schema, source=uri)
    except ArchiveError:
        try:
            return crop_spec_from_schema(schema, crop_shape=model_shape, source=uri)
        except ArchiveError:
            pass
        raise
    if spec.encoding == VAR_LIST:
        spec = CropSpec(tuple(model_shape), spec.dtype, spec.encoding)
    return spec


def _check_file(files: ArchiveFiles, path: str, model_shape, keep) -> tuple[FileInfo, object]:
    uri = files.uri(path)
    info = FileInfo(uri=uri, path=path)
    try:
        pf = open_parquet(files, path)
        schema = pf.schema_arrow
        info.spec = _spec(schema, model_shape, uri)
        if tuple(info.spec.shape) != tuple(model_shape):
            raise ArchiveError(f"{uri}: crops are {info.spec.shape[0]}x{info.spec.shape[1]}, "
                               f"the model takes {model_shape[0]}x{model_shape[1]}")
        missing = [k for k in keep if k not in schema.names]
        if missing:
            raise ArchiveError(f"{uri}: --keep column(s) {', '.join(missing)} not in this file")
        info.rows = pf.metadata.num_rows
        info.has_id = CROP_ID in schema.names
        info.fingerprint = fingerprint(files, path)
        return info, pf
    except ArchiveError as e:
        info.error = str(e)
    except Exception as e:  # anything pyarrow raises on a broken footer
        info.error = f"{uri}: not a readable Parquet file ({type(e).__name__}: {e})"
    return info, None


def _unify(types: list[pa.DataType], what: str) -> pa.DataType:
    schemas = [pa.schema([pa.field("c", t)]) for t in types]
    try:
        return pa.unify_schemas(schemas, promote_options="permissive").field("c").type
    except (pa.ArrowInvalid, pa.ArrowTypeError, NotImplementedError) as e:
        raise ArchiveError(f"{what}: files disagree on its type and cannot be unified ({e})") from None


def plan_archive(files: ArchiveFiles, *, model_shape: tuple[int, int], keep=(), unit_rows: int = 262_144) -> Plan:
    """Open every footer (nothing else is read) and cut the usable files into units."""
    infos, units = [], []
    id_types, keep_types = [], {k: [] for k in keep}
    specs: dict[str, CropSpec] = {}
    crop_types: dict[str, pa.DataType] = {}
    # found but unusable (a name that is not UTF-8): failed before running, the others go on
    infos += [FileInfo(uri=name, path="", error=f"{name}: {why}") for name, why in files.unusable]
    for path in files.paths:
        info, pf = _check_file(files, path, model_shape, keep)
        infos.append(info)
        if pf is None:
            continue
        schema = pf.schema_arrow
        if info.has_id:
            id_types.append(schema.field(CROP_ID).type)
        for k in keep:
            keep_types[k].append(schema.field(k).type)
        group = str(schema.field(CROP).type)
        specs.setdefault(group, info.spec)
        crop_types.setdefault(group, schema.field(CROP).type)
        md = pf.metadata
        start, rows, first = 0, 0, 0
        for g in range(md.num_row_groups):
            rows += md.row_group(g).num_rows
            if rows >= unit_rows or g == md.num_row_groups - 1:
                if rows:  # empty row groups at the end of a file hold nothing to score
                    units.append(Unit(_unit_key(info.uri, start), path, info.uri, start, g + 1, rows, group, first))
                    info.units.append(units[-1].key)
                start, first, rows = g + 1, first + rows, 0
    usable = [i for i in infos if i.error is None]
    if keep and not usable and infos and all("--keep" in (i.error or "") for i in infos):
        raise ConfigError(f"--keep {','.join(keep)}: no such column in any input file")
    for i, u in enumerate(units):
        u.index = i
    id_type = pa.int64()
    if any(not (pa.types.is_integer(t) or pa.types.is_null(t)) for t in id_types):
        id_type = pa.string()
    keep_fields = [pa.field(k, _unify(ts, f"--keep {k}")) for k, ts in keep_types.items()]
    if len({u.key for u in units}) != len(units):
        raise ArchiveError(f"{files.root}: two input files map to the same output name; rename one")
    return Plan(infos, units, id_type, keep_fields, specs, crop_types, unit_rows)
