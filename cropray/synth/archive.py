"""`synth_archive`: write a synthetic crop archive with `cropray.archive.ArchiveWriter`."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cropray.archive import WRITE_DTYPES, ArchiveWriter, crops_table
from cropray.errors import ConfigError, CroprayError
from cropray.synth.config import SynthConfig, check_counts
from cropray.synth.generator import SynthBatch, generate

CHUNK_ROWS = 20_000  # crops generated at once: ~330 MB of float32 crops plus temporaries
MANIFEST = "_synth.json"  # leading "_": archive readers skip it, like Spark/pyarrow metadata files
_F16_MAX = 2.0**15  # crops peaking above this are scaled down by a power of two before float16


def archive_columns(batch: SynthBatch, start: int, seed: int, labeled: bool, cfg: SynthConfig) -> dict:
    """Per-row columns as a detector would emit them; truth columns only in labelled archives."""
    n = len(batch)
    cols = {
        "crop_id": np.array([f"synth{seed}-{i:09d}" for i in range(start, start + n)], dtype=object),
        "source": np.full(n, "synth", dtype=object),
        "t_offset_s": batch.t_offset_s,
        "f_offset_hz": batch.f_offset_hz,
    }
    if labeled:
        cols["label"] = batch.label
        cols["snr"] = batch.snr  # NaN for negatives: no signal, no SNR
        cols["kind"] = batch.kind.astype(object)
        cols["drift_rate_hz_s"] = (batch.drift_rate * (cfg.channel_width_hz / cfg.row_seconds)).astype(np.float32)
    return cols


def fit_float16(crops: np.ndarray) -> np.ndarray:
    """Scale crops (N, T, F) that would overflow float16 by a power of two (exact, keeps every ratio).

    Raw power spans > 6 decades here and a bright blob can reach 1e7; float16 stops at 65504. The
    absolute level of those crops is lost, which is harmless: preprocessing normalises per crop.
    """
    peak = crops.max(axis=(1, 2))
    k = np.where(peak > _F16_MAX, np.ceil(np.log2(np.maximum(peak, 1.0) / _F16_MAX)), 0.0)
    return (crops * np.exp2(-k).astype(np.float32)[:, None, None]).astype(np.float16)


def _prepare_out(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise CroprayError(f"{out_dir} exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise CroprayError(f"{out_dir} is not empty; pass --overwrite to replace its Parquet files")
        for p in out_dir.iterdir():  # only what an archive writer leaves at top level; nothing else
            if p.is_file() and (p.suffix == ".parquet" or p.name == MANIFEST or p.name.endswith(".tmp")):
                p.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)


def _resolve(cfg: SynthConfig | None, positive_fraction, snr_range) -> SynthConfig:
    """The generator config with the flags that override it."""
    cfg = cfg or SynthConfig()
    over = {}
    if positive_fraction is not None:
        over["positive_fraction"] = positive_fraction
    if snr_range is not None:
        over["snr_range"] = tuple(snr_range)
    return cfg.replace(**over) if over else cfg


def _check(n, dtype: str, seed, files: int | None, chunk_rows: int) -> int:
    """Validate the size flags; returns the number of files (ceil(n / chunk_rows) when None)."""
    check_counts(n, files)  # n and files within their bounds (cropray.synth.config)
    if dtype not in WRITE_DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(WRITE_DTYPES)}, got {dtype!r}")
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
    files = math.ceil(n / chunk_rows) if files is None else int(files)
    if not 1 <= files <= n:
        raise ConfigError(f"files must be between 1 and n={n}, got {files}")
    return files


@dataclass
class _Counts:
    """What the writer tallies while it streams: positives and time spent generating."""

    positives: int = 0
    t_gen: float = 0.0


def _write_file(path: Path, rows: range, chunk_rows: int, *, cfg: SynthConfig, seed: int, labeled: bool,
                dtype: str, counts: _Counts, bar) -> str:
    """Stream rows [rows.start, rows.stop) into one Parquet file, chunk by chunk; returns its path.

    Written to a hidden temp file and renamed when whole (ArchiveWriter); aborted on any error."""
    writer = None
    try:
        for lo in range(rows.start, rows.stop, chunk_rows):
            hi = min(lo + chunk_rows, rows.stop)
            tg = time.perf_counter()
            batch = generate(hi - lo, cfg, seed, start=lo)
            counts.t_gen += time.perf_counter() - tg
            counts.positives += int(batch.label.sum())
            crops = fit_float16(batch.crops) if dtype == "float16" else batch.crops
            table = crops_table(archive_columns(batch, lo, seed, labeled, cfg), crops, dtype)
            writer = writer or ArchiveWriter(path, table.schema)
            writer.write(table)
            del batch, crops, table  # one chunk in memory at a time
            bar.update(hi - lo)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    return writer.close()


def synth_archive(
    out_dir,
    n: int,
    *,
    files: int | None = None,
    labeled: bool = False,
    seed: int = 0,
    positive_fraction: float | None = None,
    snr_range: tuple[float, float] | None = None,
    dtype: str = "float32",
    cfg: SynthConfig | None = None,
    overwrite: bool = False,
    progress: bool = False,
    chunk_rows: int = CHUNK_ROWS,
) -> dict:
    """Generate n crops and write them as `files` Parquet files in out_dir; return a summary dict.

    files=None picks ceil(n / chunk_rows) files; each file is streamed chunk by chunk, so memory
    stays bounded by one chunk whatever `files` is. Content depends
    only on (cfg, seed): row i is the same crop whatever `files` is. Integer dtypes rescale each crop
    to the integer range (see `cropray.archive.to_storage_dtype`): the absolute level is lost.
    """
    cfg = _resolve(cfg, positive_fraction, snr_range)
    files = _check(n, dtype, seed, files, chunk_rows)
    out_dir = Path(out_dir)
    _prepare_out(out_dir, overwrite)

    from tqdm import tqdm  # only the writer needs it

    bounds = np.linspace(0, n, files + 1).astype(int)
    counts, t0 = _Counts(), time.perf_counter()
    with tqdm(total=n, unit="crop", disable=not progress, file=sys.stderr, desc="synth") as bar:
        paths = [_write_file(out_dir / f"part-{i:05d}.parquet", range(bounds[i], bounds[i + 1]), chunk_rows,
                             cfg=cfg, seed=seed, labeled=labeled, dtype=dtype, counts=counts, bar=bar)
                 for i in range(files)]
    seconds = time.perf_counter() - t0
    summary = {
        "out": str(out_dir),
        "files": len(paths),
        "rows": n,
        "labeled": labeled,
        "positives": counts.positives,
        "dtype": dtype,
        "seed": seed,
        "bytes": sum(os.path.getsize(p) for p in paths),
        "seconds": round(seconds, 3),
        "crops_per_s": round(n / max(seconds, 1e-9), 1),
        "generate_crops_per_s": round(n / max(counts.t_gen, 1e-9), 1),
        "crop_shape": [cfg.time_bins, cfg.freq_channels],
    }
    manifest = {**summary, "config": cfg.to_dict(), "paths": [os.path.basename(p) for p in paths]}
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return summary
