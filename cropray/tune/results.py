"""The trials table, built from cropray's own trial records (`cropray.tune.records`), never from
Tune's experiment state (which holds pickles), so a resumed sweep sees every trial of every run.

One row per trial: its sampled parameters (blank where its architecture lacks them), status
(completed | stopped | failed | not run), epochs run, stopped-early flag, the last reported metrics,
the out-of-fold ROC-AUC interval of finished trials, times, and the error of failed ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cropray._result import JobResult
from cropray.tune.config import METRICS
from cropray.tune.spaces import space_rows


@dataclass(frozen=True)
class TrialCounts(JobResult):
    total: int
    completed: int
    stopped: int  # stopped early by ASHA (or the time budget)
    failed: int
    not_run: int


@dataclass(frozen=True)
class DefaultTrial(JobResult):
    """Trial 0: the regime's default configuration, the baseline the search has to beat."""

    trial_id: str
    value: float  # its objective
    status: str
    epochs_run: int


@dataclass(frozen=True)
class BestTrial(JobResult):
    trial_id: str
    value: float  # its objective
    params: dict[str, Any]  # the sampled point
    epochs_run: int
    status: str  # completed, or stopped when no trial completed
    oof_auc: dict[str, float] | None  # out-of-fold ROC-AUC {value, lo, hi}
    config: dict[str, Any]  # the TrainConfig it stands for (= best_config.json)


@dataclass(frozen=True)
class SweepBundle(JobResult):
    """The best configuration refit on all labels (OUT/bundle)."""

    path: str
    model_id: str
    k: int
    threshold: float
    cv_roc_auc: dict[str, float]  # {value, lo, hi}
    final_epochs: int
    error: str | None  # set when the refit's scores are not finite: do not use the bundle
    cv_source: str = ""  # the winning trial's out-of-fold scores, or why the retrain cross-validated again
    threshold_rule: str = ""  # how the bundle's threshold was set (Youden's J, or a target false-alarm rate)
    gain_vs_physics: dict | None = None  # the best trial's paired ROC-AUC gain over dedoppler on the same
    #   out-of-fold crops, with its interval (cropray.train.select), whether or not it shipped; None when the
    #   best trial is label-free itself
    arch: str = ""  # the architecture in the bundle: the best trial's, or dedoppler (see `physics`)
    physics: str | None = None  # why the label-free baseline ships instead of the best trial (its gain is
    #   not proven); None when the best trial ships


@dataclass(frozen=True)
class SweepSeconds(JobResult):
    sweep: float
    retrain: float
    total: float


@dataclass(frozen=True)
class TuneResult(JobResult):
    """What `run_sweep` returns, `cropray tune --json` prints and OUT/summary.json holds (its `to_dict()`)."""

    out: str
    experiment: str
    labels: str
    n_labels: int
    class_counts: dict[str, int]  # signal / not_signal
    invalid_rows: int
    regime: str
    regime_warning: str | None
    search: str  # optuna | random
    metric: str
    mode: str  # max | min
    epochs: int
    trials: TrialCounts
    resumed: bool
    best: BestTrial | None
    default: DefaultTrial | None
    bundle: SweepBundle | None
    files: list[str]  # tables, plots, best_config.json
    settings: dict[str, Any]  # the TuneConfig.to_dict() the sweep ran with
    seconds: SweepSeconds | None = None
    archive: dict[str, Any] | None = None  # what --archive drew and injected (as in `cropray train`), if used
    stop_metric: str = ""  # what ASHA stopped trials on (cropray.tune.scheduler.STOP_METRIC); `metric` ranks them


METRIC_COLS = ["cv_auc", "cv_auc_std", "cv_auc_lcb", "val_auc", "inner_val_auc", "train_loss"]
FINAL_COLS = ["oof_auc", "oof_auc_lo", "oof_auc_hi", "best_epoch"]
ERROR_CHARS = 500


def param_names(regime: str) -> list[str]:
    """Searched parameter names of a regime, in space order (branch paths included)."""
    return [r[0] for r in space_rows(regime)]


def trials_table(records: list[dict], regime: str) -> tuple[pd.DataFrame, dict[str, dict]]:
    """(table of every recorded trial ordered by trial number, {trial_id: sampled config as drawn}).
    The configs keep their types (the table's columns turn ints with blanks into floats)."""
    params = param_names(regime)
    rows, configs = [], {}
    for rec in records:
        last, status = rec["result"], rec["status"]
        status = "not run" if status == "running" else status  # in flight when the sweep ended
        total, ended = last.get("time_total_s"), last.get("timestamp")
        row = {"trial": rec["trial"], "trial_id": rec["trial_id"], "status": status,
               "stopped_early": status == "stopped", "epochs_run": int(last.get("epoch") or 0),
               "error": (rec["error"] or "failed")[:ERROR_CHARS] if status == "failed" else None,
               "time_s": float(total) if total is not None else math.nan,
               "ended_at": float(ended) if ended is not None else math.nan}
        for c in METRIC_COLS + FINAL_COLS:
            v = last.get(c)
            row[c] = float(v) if v is not None and status != "failed" else math.nan
        cfg = configs[rec["trial_id"]] = dict(rec["config"])
        for p in params:
            row[p] = cfg.get(p)
        rows.append(row)
    df = pd.DataFrame(rows, columns=_columns(params))
    df = df.sort_values("trial", kind="stable").reset_index(drop=True)
    df["trial"] = np.arange(len(df))  # compact: a trial the driver never recorded leaves no gap
    df["started_at"] = df["ended_at"] - df["time_s"]
    return df, configs


def _columns(params: list[str]) -> list[str]:
    return (["trial", "trial_id", "status", "stopped_early", "epochs_run", *METRIC_COLS, *FINAL_COLS,
             *params, "time_s", "ended_at", "error"])


def error_line(err) -> str:
    """The exception line of a Tune error text (its traceback is in the trial's error.txt)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    exc = [ln for ln in lines if "Error" in ln.split(":")[0] or "Exception" in ln.split(":")[0]]
    return (exc[-1] if exc else lines[-1] if lines else type(err).__name__)[:ERROR_CHARS]


def counts(df: pd.DataFrame) -> TrialCounts:
    c = df["status"].value_counts()
    return TrialCounts(total=int(len(df)), **{k.replace(" ", "_"): int(c.get(k, 0))
                                              for k in ("completed", "stopped", "failed", "not run")})


def best_row(df: pd.DataFrame, metric: str) -> pd.Series | None:
    """Best trial by `metric`: among completed trials; only when none completed, among stopped ones.
    A trial stopped early at a rung is not comparable to one trained to the end (fewer epochs)."""
    sign = 1.0 if METRICS[metric][0] == "max" else -1.0
    for status in ("completed", "stopped"):
        pool = df[(df["status"] == status) & np.isfinite(df[metric].astype(float))]
        if len(pool):
            order = np.lexsort((pool["trial"].to_numpy(), -sign * pool[metric].to_numpy(float)))
            return pool.iloc[order[0]]
    return None


def write_table(df: pd.DataFrame, out: Path) -> list[Path]:
    """trials.parquet and trials.csv in `out`."""
    pq, csv = out / "trials.parquet", out / "trials.csv"
    # Parameter columns mix numbers and blanks per branch: object columns of str/float are kept
    # as they are in CSV; Parquet needs one type per column, so mixed ones become strings.
    frame = df.copy()
    for c in frame.columns:
        if frame[c].dtype == object:
            kinds = {type(v) for v in frame[c] if v is not None and not (isinstance(v, float) and math.isnan(v))}
            if kinds and kinds <= {int, float}:
                frame[c] = pd.to_numeric(frame[c], errors="coerce")
    frame.to_parquet(pq, index=False)
    frame.to_csv(csv, index=False)
    return [pq, csv]

