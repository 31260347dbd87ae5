"""`cropray score MODEL INPUT OUTPUT`: score a crop archive with Ray Data (or in-process when it is small)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from cropray.cli._common import EXIT_ATTENTION, EXIT_OK, add_json_flag, emit, json_stdout, positive_int
from cropray.scoring.config import LIMITS  # torch- and Ray-free: the bounds of the size flags

if TYPE_CHECKING:
    from cropray.scoring.result import ScoreResult

EPILOG = """\
example:
  cropray score model/ crops/ scores/                      # all CPUs: in-process up to 100,000 rows, else
                                                           # embedded local Ray (--runner ray|local to choose)
  cropray score model/ 's3://bucket/crops/*.parquet' scores/ --address auto --keep obs_id,freq_hz
  pandas.read_parquet("scores/")                           # crop_id, score, is_signal, model_id, keep

OUTPUT holds one scores file per unit of input; _quarantine/ the rows that could not be scored
(with crop_id, source_file, row, reason) and _manifest.json the report. Rerunning the same command
after a crash finishes only what is missing; rerunning a finished one does nothing (and writes
nothing). One run at a time per OUTPUT (a lock, OUTPUT/_lock, freed when the run ends or dies); a
resumed run refuses an input file changed since (size, modification time, Parquet footer).
exit status: 0 all rows scored, 1 rows quarantined / files failed / duplicate crop_ids, 2 bad usage."""


def add_score_args(p: argparse.ArgumentParser) -> None:
    """The arguments of `cropray score`, shared with jobs/score_archive.py."""
    p.add_argument("model", metavar="MODEL", help="model bundle directory (from `cropray train --out`)")
    p.add_argument("input", metavar="INPUT", help="crop archive: Parquet file, directory, glob or URI (s3://, gs://)")
    p.add_argument("output", metavar="OUTPUT", help="output directory (local; created if missing)")
    p.add_argument("--address", default=None,
                   help="Ray cluster to join: auto, HOST:PORT or ray://HOST:10001 (default: embedded local Ray)")
    p.add_argument("--runner", default="auto", choices=["auto", "ray", "local"],
                   help="ray: Ray Data actors (embedded local Ray, or --address); local: in this process without "
                        "Ray (one machine, every CPU); auto (default): local for a job of at most 100,000 rows when "
                        "no cluster, --actors, --cpus-per-actor or --num-gpus is given and no GPU is visible, else ray")
    p.add_argument("--actors", default=None, metavar="N|MIN,MAX",
                   help="actor pool size, fixed N or autoscaling MIN,MAX (default: one per GPU, else one per CPU)")
    p.add_argument("--batch-size", type=positive_int("--batch-size", LIMITS["batch_size"]), default=1024, metavar="B",
                   help="rows per batch sent to an actor (default 1024)")
    p.add_argument("--model-batch", type=positive_int("--model-batch", LIMITS["model_batch"]), default=128, metavar="M",
                   help="rows per model call inside an actor (default 128)")
    p.add_argument("--cpus-per-actor", type=float, default=None, metavar="C",
                   help="CPUs each actor holds; torch threads = max(1, round(C)) "
                        "(default: (CPUs - 1) / actors, at most 1, so read tasks keep a CPU)")
    p.add_argument("--num-gpus", type=float, default=None, metavar="G",
                   help="GPUs per actor (default 1 when the cluster has GPUs, else 0)")
    p.add_argument("--keep", default=None, metavar="COLS", help="comma-separated input columns copied to the scores")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "int8"],
                   help="auto (default): ONNX Runtime fp32 on CPU, int8 where the bundle's CV admits it and it "
                        "agrees on this CPU, bf16 autocast on CUDA; fp32: never reduced; bf16: CUDA only; int8: CPU only")
    p.add_argument("--unit-rows", type=positive_int("--unit-rows", LIMITS["unit_rows"]), default=262_144, metavar="R",
                   help="rows per commit unit (whole row groups; default 262144)")
    p.add_argument("--overwrite", action="store_true", help="discard the results already in OUTPUT and start over")
    add_json_flag(p)


def register(sub) -> None:
    p = sub.add_parser("score", help="score a crop archive with Ray Data (resumable, exactly once)",
                       description="Score every crop of an archive with a model bundle on Ray Data.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_score_args(p)
    p.set_defaults(func=run)


def config_from_args(args):
    from cropray.scoring.config import ScoreConfig, parse_actors

    return ScoreConfig(bundle=args.model, input=args.input, output=args.output, address=args.address,
                       actors=parse_actors(args.actors), batch_size=args.batch_size, model_batch=args.model_batch,
                       cpus_per_actor=args.cpus_per_actor, num_gpus=args.num_gpus, keep=args.keep or (),
                       precision=args.precision, unit_rows=args.unit_rows,
                       overwrite=args.overwrite, runner=args.runner)


def human(s: ScoreResult) -> str:
    if s.noop:
        # already done, or why there was nothing to score (every file failed, no rows)
        head = s.noop_reason or f"nothing to do: {s.output} already holds every unit"
    else:
        rate = f"{s.crops_per_s:,.0f} crops/s" if s.crops_per_s else "-"
        head = f"scored {s.rows_this_run:,} rows in {s.wall_s:.1f} s ({rate})" + (
            f", resumed after {s.units_already_done} units done before" if s.resumed else "")
    ok = "ok" if s.reconciled else "MISMATCH"
    lines = [
        head,
        f"  model      {s.model_id}",
        f"  rows       read {s.rows_read:,} = scored {s.rows_scored:,} + quarantined {s.rows_quarantined:,} ({ok})",
        f"  positives  {s.positives:,} ({s.positives / max(1, s.rows_scored):.2%} of scored)",
        f"  files      {s.files_done} done, {s.files_failed} failed, {s.files_pending} pending (of {s.files})",
    ]
    if s.reasons:
        lines.append("  quarantine " + ", ".join(f"{k} {v:,}" for k, v in sorted(s.reasons.items())))
    d = s.duplicates
    if d.crop_ids:
        lines.append(f"  duplicates {d.crop_ids:,} crop_ids appear more than once ({d.extra_rows:,} extra rows), "
                     f"e.g. {', '.join(d.examples[:3])}")
    for f in s.failed[:10]:
        lines.append(f"  FAILED     {f.error}")
    if s.first_block_s is not None:
        steady = f"{s.steady_crops_per_s:,.0f} crops/s" if s.steady_crops_per_s else "-"
        paths = ", ".join(sorted({a.path for a in s.actors if a.path})) or "-"
        who = "actor start-up" if s.runner == "ray" else "in this process, no Ray: start-up"
        lines.append(f"  timing     first results after {s.first_block_s:.1f} s ({who}: imports, "
                     f"bundle, path build); then {steady}; path {paths}")
    if s.actors and s.runner == "local":
        lines.append(f"  runner     local ({s.runner_reason}); {(s.pool or {}).get('threads', '?')} threads; "
                     f"peak RSS {s.driver_peak_rss_mb:.0f} MB")
    elif s.actors:
        mem = ", ".join(f"{a.peak_rss_mb:.0f}" for a in s.actors)
        lines.append(f"  memory     driver {s.driver_peak_rss_mb:.0f} MB peak RSS; actors {mem} MB")
    lines.append(f"  output     {s.output} (report: {s.output.rstrip('/')}/_manifest.json)")
    return "\n".join(lines)


def exit_status(s: ScoreResult) -> int:
    attention = s.rows_quarantined or s.files_failed or s.files_pending or s.duplicates.crop_ids
    return EXIT_ATTENTION if attention or not s.reconciled else EXIT_OK


def run(args) -> int:
    from cropray.scoring.trace import mark

    mark("cli_run")
    from cropray.scoring.pipeline import score_archive

    mark("pipeline_imported")

    with json_stdout(args.json) as out:  # --json: stdout holds the JSON only, whatever Ray prints
        summary = score_archive(config_from_args(args), log=lambda m: print(f"cropray score: {m}", file=sys.stderr))
        emit(summary, human(summary), args.json, out)
    mark("cli_done")
    return exit_status(summary)
