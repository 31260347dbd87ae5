"""`score_archive(cfg)`: the Ray Data driver of `cropray score`.

    plan (footers only) -> open OUTPUT (resume / refuse / overwrite) -> per crop encoding:
    read_datasource(UnitSource) -> map_batches(ScoreBatch, actor pool) -> iter_batches on the driver
    -> Committer (per-unit temp files, atomic rename, manifest) -> duplicate check -> summary

Why our own commit protocol rather than Ray Data's: `write_parquet` names files with a fresh
uuid per run (a rerun into the same folder duplicates rows, overwrite mode deletes first and is
not atomic) and mixes source files in blocks, and Ray Data's job checkpointing
(`DataContext.checkpoint_config`) runs a filter actor asking 1 CPU + 1 GiB that deadlocked a 2-CPU
cluster and keeps no per-file accounting (row counts, failed files, quarantine). Ray Data still
does the heavy part: streaming reads, the actor pool, backpressure and retries (actor pools
restart dead actors and redo their tasks). Scored rows are ~40 bytes against ~16 KB of crop, so
returning them to the driver costs little and makes the driver the single writer: a unit is
committed by one rename once every one of its row indices came back exactly once.
"""

from __future__ import annotations

import errno
import os
import re
import resource
import shutil
import socket
import sys
import time
from pathlib import Path

from cropray.archive import resolve_archive
from cropray.archive.files import ArchiveFiles, printable
from cropray.errors import ConfigError, CroprayError
from cropray.outlock import LOCK_NAME
from cropray.scoring.commit import (
    Committer,
    clean_uncommitted,
    crash_after_commit_hook,
    quarantine_path,
    rows_on_disk,
    scores_path,
)
from cropray.scoring.config import ScoreConfig, choose_runner
from cropray.scoring.manifest import MANIFEST, Manifest
from cropray.scoring.plan import Plan, plan_archive
from cropray.scoring.result import ScoreResult
from cropray.scoring.sink import BlockSink
from cropray.scoring.trace import mark

DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def _open_output(cfg: ScoreConfig, plan: Plan, model: dict) -> tuple[Manifest, bool]:
    """The manifest to continue (resume) or a fresh one; refuses to mix runs. Returns (manifest, resumed)."""
    out = Path(cfg.output)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output {out} is a file; give a directory")
    old = Manifest.load(out) if out.is_dir() else None
    if out.is_dir() and old is None and any(p.name != LOCK_NAME for p in out.iterdir()):
        raise ConfigError(f"output {out} is not empty and holds no {MANIFEST}: not a cropray score output; "
                          "give a new or empty directory")
    if old is not None and cfg.overwrite:
        for p in out.iterdir():  # only what a score run writes
            if p.name.endswith(".parquet") or p.name in ("_tmp", "_quarantine", MANIFEST):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        old = None
    if old is not None:
        old.check_resumable(model, plan.signature(), plan.units, plan.fingerprints())
        old.resume_with(cfg.to_dict())
        return old, True
    out.mkdir(parents=True, exist_ok=True)
    return Manifest.new(out, model=model, input_root=cfg.input, signature=plan.signature(), config=cfg.to_dict(),
                        inputs=plan.fingerprints()), False


def _run_pipelines(cfg, plan: Plan, files, pending, sink: BlockSink, *, strict: bool, extra_columns=None):
    """One Ray Data pipeline per crop encoding among the pending units, every result block into `sink`;
    returns the pool plan."""
    import ray

    from cropray.scoring.cluster import plan_pool
    from cropray.scoring.frames import frame_schema
    from cropray.scoring.scorer import ScoreBatch, bundle_files
    from cropray.scoring.source import UnitSource

    res = ray.cluster_resources()
    pool = plan_pool(cfg.actors, cfg.cpus_per_actor, cfg.num_gpus, cluster_cpus=res.get("CPU", 0.0),
                     cluster_gpus=res.get("GPU", 0.0), strict=strict)
    if cfg.precision == "bf16" and not pool.num_gpus:  # refused here, not as an error inside every actor
        raise ConfigError("--precision bf16 runs only on CUDA actors, and this job has no GPU (CPU actors run "
                          "ONNX Runtime fp32, or int8 where the bundle admits it: --precision auto)")
    if cfg.precision == "int8" and pool.num_gpus:
        raise ConfigError("--precision int8 runs only on CPU actors (ONNX Runtime); GPU actors use bf16 autocast")
    bundle_ref = ray.put(bundle_files(cfg.bundle))  # loaded (and hash-checked) once per actor
    mark("bundle_put")
    for group, spec in plan.specs.items():
        units = [u for u in pending if u.group == group]
        if not units:
            continue
        schema = frame_schema(plan.crop_types[group], plan.id_type, plan.keep_fields)
        row_bytes = spec.length * spec.dtype.itemsize + 64
        ds = ray.data.read_datasource(UnitSource(units, files.filesystem, schema, cfg.read_rows, row_bytes),
                                      num_cpus=pool.read_cpus)
        ds = ds.map_batches(
            ScoreBatch,
            fn_constructor_kwargs=dict(bundle=bundle_ref, spec=spec, precision=cfg.precision,
                                       threads=pool.threads,
                                       model_batch=cfg.model_batch, device="cuda" if pool.num_gpus else "cpu",
                                       extra_columns=extra_columns),
            batch_size=cfg.batch_size, batch_format="pyarrow", zero_copy_batch=True,
            compute=ray.data.ActorPoolStrategy(min_size=pool.min_size, max_size=pool.max_size),
            num_cpus=pool.num_cpus, num_gpus=pool.num_gpus or None, udf_modifying_row_count=False,
        )
        mark("iter_start")
        for block in _blocks(ds, cfg.bundle):
            sink(block)
    return pool


def _blocks(ds, bundle):
    """The pipeline's result blocks; an actor constructor's CroprayError (a bundle that fails to load
    there) comes out as itself, one line and exit 2, not as Ray's ActorDiedError with tracebacks."""
    import logging

    from cropray.scoring.preflight import actor_bundle_error, hide_from_console

    # Ray Data prints a failed pipeline's stack trace on the console before raising; it still goes to
    # Ray Data's log file, and an error that is not ours still reaches the user as a traceback.
    quiet = logging.getLogger("ray.data.exceptions")
    quiet.addFilter(hide_from_console)
    try:
        yield from ds.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=2)
    except Exception as e:
        err = actor_bundle_error(e, bundle)
        if err is None:
            raise
        raise err from None
    finally:
        quiet.removeFilter(hide_from_console)


def _inputs(cfg: ScoreConfig, files: ArchiveFiles | None = None) -> ArchiveFiles:
    """The archive's files (`files`, or `cfg.input` resolved now), minus any under OUTPUT (scoring
    `dir/` into `dir/scores/`, then rerunning)."""
    import dataclasses

    import pyarrow.fs as pafs

    from cropray.errors import ArchiveError

    if files is None:
        files = resolve_archive(cfg.input, keep_unusable=True)  # non-UTF-8 names: failed files, not a crash
    if isinstance(files.filesystem, pafs.LocalFileSystem):
        out = str(Path(cfg.output).resolve()) + "/"
        kept = [p for p in files.paths if not str(Path(p).resolve()).startswith(out)]
        if not kept and files.paths:
            raise ArchiveError(f"no Parquet files in {cfg.input} outside the output directory {cfg.output}")
        files = dataclasses.replace(files, paths=kept)
    return files


def score_archive(cfg: ScoreConfig, log=None, on_commit=None, on_block=None,
                  files: ArchiveFiles | None = None, extra_columns=None) -> ScoreResult:
    """Score `cfg.input` into `cfg.output`; returns the summary (also in OUTPUT/_manifest.json).

    files: `cfg.input` already resolved (cropray.archive.resolve_archive(..., keep_unusable=True)) by
    a caller that reads the archive again afterwards (cropray suggest): it is listed once per job.

    log(str): progress messages. on_commit(key, record): called in the driver after each unit is
    committed or failed (progress displays; the multi-node test kills a node from it).
    on_block(table, plan): called in the driver with every result block (ScoreBatch's output, extra
    columns included, before commit; `_unit` indexes plan.units): `cropray suggest` consumes it.
    extra_columns: ScoreBatch's hook for a caller's extra output columns (`cropray suggest`'s features).
    The output is locked for the whole run (cropray.outlock): a second run into it is refused.
    """
    from cropray.outlock import output_lock
    from cropray.scoring.preflight import check_bundle

    log = log or (lambda msg: None)
    t0 = time.time()
    out = Path(cfg.output)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output {out} is a file; give a directory")
    if printable(str(out)) != str(out):
        raise ConfigError(f"output {printable(str(out))}: the name is not valid UTF-8; give another directory")
    if cfg.address:
        from cropray.ray_session import probe

        probe(cfg.address)  # fail fast, before reading anything
    else:
        from cropray.ray_session import probe_environment

        probe_environment()  # RAY_ADDRESS: the same check, before OUTPUT exists
    mark("score_archive")
    # Loaded as the actors will load it (digest, hashes, safetensors headers, hparams fit the weights),
    # before OUTPUT exists or a pool starts: a bad bundle is one line, exit 2 (scoring/preflight.py).
    bundle = check_bundle(cfg.bundle)
    model = {"model_id": bundle.model_id, "bundle_sha256": bundle.bundle_sha256, "bundle": str(cfg.bundle),
             "threshold": float(bundle.threshold), "input_shape": list(bundle.input_shape)}
    files = _inputs(cfg, files)  # listed once: the plan and the read tasks use the same list
    plan = plan_archive(files, model_shape=tuple(bundle.input_shape), keep=cfg.keep, unit_rows=cfg.unit_rows)
    mark("planned")
    with output_lock(out, read_only_ok=True) as lock:
        try:
            return _score_locked(cfg, plan, files, bundle.model_id, model, lock, log, on_commit, on_block, t0,
                                 extra_columns=extra_columns)
        except OSError as e:
            err = disk_error(e, out)
            if err is None:
                raise
            raise err from None


def disk_error(e: OSError, out: Path) -> CroprayError | None:
    """A CroprayError (exit 2) for a full disk or a read-only/unwritable output, else None.

    pyarrow's writers raise OSError without `errno` set, with "[Errno 28] ..." in the text.
    """
    code = e.errno
    if code is None:
        m = re.search(r"\[Errno (\d+)\]", str(e))
        code = int(m.group(1)) if m else None
    if code not in DISK_ERRNOS:
        return None
    where = printable(str(e.filename)) if e.filename else str(out)
    return CroprayError(
        f"cannot write to {where}: {os.strerror(code)}. {out / MANIFEST} is consistent (a unit is recorded as "
        f"done only once its files are complete; partial files are discarded on the next run): free space "
        f"(or make {out} writable) and rerun the same command to finish the rest")


def _score_locked(cfg, plan: Plan, files, model_id: str, model: dict, lock, log, on_commit, on_block,
                  t0: float, extra_columns=None) -> ScoreResult:
    """Everything that reads or writes OUTPUT, under its lock."""
    out = Path(cfg.output)
    manifest, resumed = _open_output(cfg, plan, model)
    done = manifest.done_keys()
    manifest.forget_unfinished()  # failed or unfinished before: try again
    pending = [u for u in plan.units if u.key not in done]
    manifest.summarize(plan)
    run = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": socket.gethostname(), "resumed": resumed,
           "units_already_done": len(done), "units_to_score": len(pending)}
    if not pending:  # reads only: a finished rerun on a read-only or full disk must succeed
        run["noop"], run["noop_reason"] = True, nothing_to_do(plan, out)
        log(run["noop_reason"])
        return _finish(manifest, plan, run, t0, None, {}, write=False)
    if not lock.held:
        raise CroprayError(
            f"cannot write to {out} ({lock.reason}): {len(pending)} of {len(plan.units)} units are still to score. "
            f"{out / MANIFEST} is consistent: make {out} writable and rerun the same command to finish")
    if resumed:
        log(f"resuming: {len(done)} of {len(plan.units)} units already done, {len(pending)} to score")
    run["stale_files_removed"] = clean_uncommitted(out, done)
    log(f"scoring {sum(u.rows for u in pending):,} rows in {len(pending)} units of "
        f"{len({u.path for u in pending})} files with {model_id}")
    manifest.save(force=True)  # the manifest exists before any output file does

    def record(key, rec):
        mark("unit_committed", unit=key)
        manifest.record_unit(key, rec)
        if on_commit:
            on_commit(key, rec)
        crash_after_commit_hook(manifest)  # a no-op unless a test arms it (commit.py)

    committer = Committer(out, plan, pending, model_id, record)
    sink = BlockSink(committer, manifest, plan, on_block)
    runner, why = choose_runner(cfg, sum(u.rows for u in pending))
    run.update(runner=runner, runner_reason=why)
    if runner == "local":
        from cropray.scoring.local import run_local

        t1 = time.time()
        try:
            pool = run_local(cfg, plan, files, pending, sink, extra_columns=extra_columns)
        except BaseException:
            committer.abort()
            raise
        _timing(run, committer, sink, t1, pool)
        return _finish(manifest, plan, run, t0, manifest.rows_done(u.key for u in pending), sink.actors)

    # Everything the driver imports after joining Ray is imported first. Under `ray job submit` the code runs
    # from the job's unpacked working_dir, and a lazy import made just after joining the cluster from the
    # job failed (ModuleNotFoundError for a module the package holds) on a loaded 2-node test cluster.
    import cropray.scoring.cluster  # noqa: F401
    import cropray.scoring.scorer  # noqa: F401
    import cropray.scoring.source  # noqa: F401
    from cropray.ray_session import open_session

    mark("ray_init_start", torch_loaded="torch" in sys.modules)
    session = open_session(cfg.address)  # embedded, --address, RAY_ADDRESS or reused (ray_session.py)
    mark("ray_init_done")
    try:
        run["cluster"] = session.resources().to_dict()
        t1 = time.time()
        # strict: an embedded cluster cropray started has a known, fixed size
        try:
            pool = _run_pipelines(cfg, plan, files, pending, sink, strict=session.private,
                                  extra_columns=extra_columns)
        except BaseException:
            committer.abort()
            raise
        _timing(run, committer, sink, t1, pool.describe())
    finally:
        session.close()
    mark("ray_closed")
    return _finish(manifest, plan, run, t0, manifest.rows_done(u.key for u in pending), sink.actors)


def _timing(run: dict, committer: Committer, sink: BlockSink, t1: float, pool: dict) -> None:
    """Finish the commits; record start-up (imports, bundle, path build) vs the steady state after the
    first block: the two numbers that say where a short job's time went."""
    lost = committer.finish()
    t2 = time.time()
    first = sink.timing.get("first_block", t2)
    run.update(scoring_s=round(t2 - t1, 3), first_block_s=round(first - t1, 3),
               steady_rows_per_s=round(sink.timing.get("rows_after_first", 0) / (t2 - first), 1)
               if t2 > first + 1 else None,
               pool=pool, retried_rows_dropped=committer.dropped_duplicates, lost=lost)


def nothing_to_do(plan: Plan, out: Path) -> str:
    """What a run with no unit to score says: already done, or why there was nothing to score."""
    failed = [f for f in plan.files if f.error]
    empty = [f for f in plan.files if not f.error and not f.units]
    if plan.units:
        note = f"; {len(failed)} input file(s) failed before scoring (listed below)" if failed else ""
        return f"nothing to do: {out} already holds every unit (use --overwrite to score again){note}"
    if not empty:
        return (f"nothing scored: every input file failed ({len(failed)} of {len(plan.files)}, listed below); "
                f"{out} was not written")
    names = ", ".join(f.uri for f in empty[:3]) + (", ..." if len(empty) > 3 else "")
    if not failed:
        return f"nothing scored: the input holds no rows ({names}: 0 rows)"
    return (f"nothing scored: {len(failed)} input file(s) failed (listed below) and the other {len(empty)} "
            f"hold no rows ({names})")


def _finish(manifest: Manifest, plan: Plan, run: dict, t0: float, rows, actors: dict, *,
            write: bool = True) -> ScoreResult:
    """Totals, the duplicate check after new output, the run record; the manifest saved if `write`."""
    from cropray.scoring.dups import find_duplicates

    totals = manifest.summarize(plan)
    out = manifest.out
    done = manifest.done_keys()
    if rows is not None:  # the duplicate check reads every committed crop_id: only after new output
        paths = [p for k in sorted(done) for p in (scores_path(out, k), quarantine_path(out, k)) if p.exists()]
        manifest.record_duplicates(find_duplicates(paths, totals["rows_read"]))
        manifest.record_on_disk(*rows_on_disk(out, done))  # the files themselves must add up too
    wall = time.time() - t0
    run.update(wall_s=round(wall, 3), rows=rows or 0,
               crops_per_s=round((rows or 0) / run["scoring_s"], 1) if run.get("scoring_s") else None,
               driver_peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
               actors=sorted(actors.values(), key=lambda a: a["worker"]))
    manifest.finish_run(run)
    if write:
        manifest.save(force=True)
    mark("finished", torch_loaded="torch" in sys.modules)
    return manifest.result()

