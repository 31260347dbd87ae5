"""`suggest(...)`: MODEL + ARCHIVE -> QUEUE, the K crops most worth labelling next.

    labelled ids (--labels) -> score_archive(features on, on_block=Collector) through Ray Data
    -> bounded candidate pools per reason -> k-center picks -> crops read back -> QUEUE (one Parquet
    file, written atomically)

Scores go to a temporary directory next to QUEUE, `.QUEUE.scores-XXXXXXXX/` (removed afterwards)
unless `scores` names one to keep. While the run lives it holds a flock on that directory; one left
by a killed run (its flock gone with it) is removed by the next `suggest` writing the same QUEUE.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from cropray.errors import ConfigError
from cropray.suggest.config import REASONS, SuggestConfig

QUEUE_META = b"cropray.queue"


def _check_out(out: Path, overwrite: bool) -> None:
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory; QUEUE is one Parquet file (e.g. queue.parquet)")
    if out.exists() and not overwrite:
        raise ConfigError(f"--out {out} exists; pass --overwrite to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)


def suggest(model: str, archive: str, out: str, cfg: SuggestConfig, *, labels: str | None = None,
            scores: str | None = None, overwrite: bool = False, score_kwargs: dict | None = None,
            log=None) -> dict:
    """Write QUEUE and return the summary (picked per reason, rows seen, skipped, timing)."""
    from cropray.archive import resolve_archive
    from cropray.bundle import load_bundle
    from cropray.models.policy import arch_spec
    from cropray.outlock import claim_scratch, remove_abandoned
    from cropray.scoring.config import ScoreConfig
    from cropray.scoring.pipeline import score_archive
    from cropray.suggest.collect import Collector
    from cropray.suggest.labels import label_map
    from cropray.suggest.select import choose

    t0 = time.time()
    log = log or (lambda m: None)
    out_p = Path(out)
    _check_out(out_p, overwrite)
    known = label_map(labels) if labels else {}
    bundle = load_bundle(model)
    for old in sorted(out_p.parent.glob(glob.escape(f".{out_p.name}") + ".scores-*")):  # a killed run's debris
        if old.is_dir() and remove_abandoned(old):
            log(f"removed {old}: scores left by a killed run on the same queue")
    col = Collector(cfg, bundle.threshold, probability=arch_spec(bundle.arch).score_range == (0.0, 1.0), labelled_ids=known)
    work, held = (Path(scores), None) if scores else claim_scratch(out_p.parent, f".{out_p.name}.scores-")
    try:
        scfg = ScoreConfig(bundle=model, input=archive, output=str(work), overwrite=True,
                           **(score_kwargs or {}))
        files = resolve_archive(archive, keep_unusable=True)  # listed once: scored, then the picks fetched
        run = score_archive(scfg, log=log, on_block=col, files=files,
                            extra_columns=functools.partial(feature_columns, dim=cfg.features))
        picks = choose(col)
        t1 = time.time()
        fs = files.filesystem
        where = [(*col.units[int(u)], int(r), c) for u, r, c in zip(picks.rows.unit, picks.rows.row, picks.rows.crop_id)]
        from cropray.suggest.fetch import fetch_crops

        crops = fetch_crops(fs, where)
    finally:
        if held is not None:
            shutil.rmtree(work, ignore_errors=True)
            os.close(held)
    write_queue(out_p, picks, crops, [w[1] for w in where], bundle, cfg)
    counts = {r: int((picks.reason == r).sum()) for r in REASONS}
    return {"queue": str(out_p), "model_id": bundle.model_id, "threshold": float(bundle.threshold),
            "n": len(picks.reason), "asked": cfg.n, "picked": counts, "rows_scored": run["rows_scored"],
            "rows_quarantined": run["rows_quarantined"], "rows_read": run["rows_read"],
            "files_failed": run["files_failed"], "labelled_skipped": col.rows_labelled,
            "labels_given": len(known), "candidates_seen": col.rows_seen,
            "pool_sizes": {r: len(p) for r, p in col.pools.items()},
            "select_s": round(time.time() - t1, 3), "wall_s": round(time.time() - t0, 2),
            "scores": str(work) if scores else None}


def write_queue(out: Path, picks, crops, source_files, bundle, cfg: SuggestConfig) -> None:
    """QUEUE columns: rank, crop_id, crop (H, W float32 tensor), score, is_signal, track_stat, reason,
    priority, source_file, row, features, model_id; pick order = rank order."""
    from cropray.archive import crops_table, write_table_atomic

    k = len(picks.reason)
    h, w = (crops[0].shape if k else tuple(bundle.input_shape))
    arr = np.stack(crops).astype(np.float32) if k else np.zeros((0, h, w), np.float32)
    r = picks.rows
    feat = pa.FixedSizeListArray.from_arrays(pa.array(r.feat.astype(np.float32).reshape(-1)), cfg.features)
    ids = r.crop_id.tolist()
    table = crops_table({"crop_id": pa.array(ids) if k else pa.array([], pa.string())}, arr)
    extra = {
        "rank": pa.array(np.arange(k, dtype=np.int32)), "score": pa.array(r.score.astype(np.float32)),
        "is_signal": pa.array(r.score >= bundle.threshold), "track_stat": pa.array(r.track.astype(np.float32)),
        "reason": pa.array(picks.reason.tolist(), pa.string()), "priority": pa.array(picks.priority.astype(np.float64)),
        "source_file": pa.array(list(source_files), pa.string()), "row": pa.array(r.row.astype(np.int64)),
        "features": feat, "model_id": pa.array([bundle.model_id] * k, pa.string()),
    }
    for name, a in extra.items():
        table = table.append_column(name, a)
    meta = {"model_id": bundle.model_id, "threshold": float(bundle.threshold), "config": cfg.to_dict(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), QUEUE_META: json.dumps(meta).encode()})
    write_table_atomic(table, out)


def feature_columns(model, dim: int):
    """ScoreBatch's extra-columns hook: `_feat` / `_track` of each crop (cropray.suggest.features)."""
    from cropray.suggest.features import SuggestFeatures, extra_columns

    return functools.partial(extra_columns, SuggestFeatures(model, dim))
