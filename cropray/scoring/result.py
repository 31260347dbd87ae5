"""`ScoreResult`: what `score_archive` returns and `cropray score --json` prints (its `to_dict()`).

Made from the output manifest (`Manifest.result()`), so a no-op rerun reports the same totals as
the run that wrote them. Torch- and Ray-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cropray._result import JobResult


@dataclass(frozen=True)
class FailedFile(JobResult):
    file: str  # the input file's URI
    error: str  # why it could not be scored (names the file)


@dataclass(frozen=True)
class Duplicates(JobResult):
    crop_ids: int = 0  # crop_ids that appear more than once across the committed output
    extra_rows: int = 0  # rows beyond the first of each such id
    examples: list[str] = field(default_factory=list)  # a few of them


@dataclass(frozen=True)
class ActorStat(JobResult):
    worker: str  # host:pid of the actor process
    path: str | None  # the fast path it ran (cropray.fastpath)
    rows: int  # rows it scored this run
    peak_rss_mb: float  # its peak resident memory


@dataclass(frozen=True)
class ScoreResult(JobResult):
    """Totals over the whole output (all runs into it) and figures of this run."""

    output: str
    model_id: str
    state: str  # complete | incomplete
    noop: bool  # nothing was left to score (a finished rerun, or nothing scorable)
    noop_reason: str | None
    resumed: bool
    rows_read: int
    rows_scored: int
    rows_quarantined: int
    reconciled: bool  # read == scored + quarantined, per file and on disk
    reasons: dict[str, int]  # quarantine reason -> rows
    positives: int
    files: int
    files_done: int
    files_failed: int
    files_pending: int
    failed: list[FailedFile]
    duplicates: Duplicates
    rows_this_run: int
    crops_per_s: float | None
    wall_s: float | None
    units_already_done: int | None
    units_scored: int | None
    driver_peak_rss_mb: float | None
    actors: list[ActorStat]
    pool: dict[str, Any] | None  # the actor pool plan (cropray.scoring.cluster.PoolPlan.describe())
    first_block_s: float | None  # actor start-up + one batch
    steady_crops_per_s: float | None  # throughput after the first block
    runner: str = "ray"  # ray | local (in-process), for this run
    runner_reason: str | None = None  # why (--runner, or auto's rule)

    @classmethod
    def from_manifest(cls, m: dict) -> ScoreResult:
        """From the manifest's JSON document (its totals, files and last run)."""
        t, run = m["totals"], m["runs"][-1]
        dups = m.get("duplicates") or {}
        return cls(
            output=str(m.get("config", {}).get("output")), model_id=m["model"]["model_id"], state=m["state"],
            noop=bool(run.get("noop")), noop_reason=run.get("noop_reason"), resumed=run.get("resumed", False),
            rows_read=t["rows_read"], rows_scored=t["rows_scored"], rows_quarantined=t["rows_quarantined"],
            reconciled=t["reconciled"], reasons=t["reasons"], positives=t["positives"], files=t["files"],
            files_done=t["files_done"], files_failed=t["files_failed"], files_pending=t["files_pending"],
            failed=[FailedFile(f["file"], f["error"]) for f in m["files"] if f["status"] == "failed"],
            duplicates=Duplicates(dups.get("crop_ids", 0), dups.get("extra_rows", 0), list(dups.get("examples", []))),
            rows_this_run=run.get("rows", 0), crops_per_s=run.get("crops_per_s"), wall_s=run.get("wall_s"),
            units_already_done=run.get("units_already_done"), units_scored=run.get("units_to_score"),
            driver_peak_rss_mb=run.get("driver_peak_rss_mb"),
            actors=[ActorStat(a["worker"], a.get("path"), a["rows"], a["peak_rss_mb"]) for a in run.get("actors", [])],
            pool=run.get("pool"), first_block_s=run.get("first_block_s"),
            steady_crops_per_s=run.get("steady_rows_per_s"), runner=run.get("runner", "ray"),
            runner_reason=run.get("runner_reason"),
        )
