"""`run_sweep`: the whole `cropray tune` job as one library call.

read labels -> pick the regime -> Tuner(with_resources(with_parameters(train_trial, data)), ASHA that
never stops trial 0 (the default config), ConcurrencyLimiter(Optuna TPE | random)) -> trials table,
plots, best_config.json -> a bundle
retrained on all labels with the best config (the same `train_and_bundle` as `cropray train`).

Layout of OUT: sweep/ (Tune's experiment dir: fixed name, so --resume finds it), tune_config.json and
data.json (what --resume must reuse and check), trials.parquet, trials.csv, sweep_params.png,
sweep_progress.png, best_config.json (a TrainConfig: `cropray train --config` accepts it), bundle/,
summary.json.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from ray import tune

from cropray.errors import CroprayError
from cropray.tune.config import TuneConfig
from cropray.tune.plots import plot_params, plot_progress
from cropray.tune.results import best_row, counts, trials_table, write_table
from cropray.tune.scheduler import BaselineASHA
from cropray.tune.search import make_searcher
from cropray.tune.spaces import SPACES, choose_regime, default_point
from cropray.tune.trainable import build_train_config, check_fixed, train_trial

EXPERIMENT = "sweep"
OUTPUTS = ("sweep", "tune_config.json", "data.json", "trials.parquet", "trials.csv", "sweep_params.png",
           "sweep_progress.png", "best_config.json", "bundle", "summary.json")


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class _Progress(tune.Callback):
    """One stderr line per finished trial (Tune's own table is off: it would interleave with --json)."""

    def __init__(self, metric: str):
        self.metric = metric

    def on_trial_complete(self, iteration, trials, trial, **info):
        r = trial.last_result or {}
        how = "completed" if r.get("finished") else f"stopped at epoch {r.get('epoch', 0)}"
        value = r.get(self.metric, float("nan"))
        print(f"trial {trial.trial_id}: {how}, {self.metric} {value:.4f}  {trial.config.get('arch', '')}",
              file=sys.stderr, flush=True)

    def on_trial_error(self, iteration, trials, trial, **info):
        print(f"trial {trial.trial_id}: FAILED (see {trial.path}/error.txt)", file=sys.stderr, flush=True)


def _trial_dirname(trial) -> str:
    return f"trial_{trial.trial_id}"  # short: the default name repeats every parameter


def fingerprint(x: np.ndarray, y: np.ndarray) -> str:
    """sha256 of the labelled set, so --resume refuses different labels (trials would not compare)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(x, dtype=np.float32).tobytes())
    return h.hexdigest()


def _prepare_out(out: Path, overwrite: bool) -> None:
    """A fresh sweep needs an empty OUT; --overwrite removes only the sweep's own outputs."""
    if out.exists() and not out.is_dir():
        raise CroprayError(f"{out}: exists and is not a directory")
    if out.exists() and any(p.name != "_lock" for p in out.iterdir()):  # _lock: cropray.outlock
        if not overwrite:
            hint = " (a sweep is there: --resume continues it)" if (out / EXPERIMENT).exists() else ""
            raise CroprayError(f"{out}: already exists and is not empty{hint}; pass --overwrite to replace it")
        for name in OUTPUTS:
            p = out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _load_saved(out: Path) -> tuple[TuneConfig, dict]:
    exp = out / EXPERIMENT
    if not (exp.is_dir() and (out / "tune_config.json").is_file() and tune.Tuner.can_restore(str(exp))):
        raise CroprayError(f"{out}: no sweep to resume there (expected {exp} from an earlier `cropray tune`); "
                           "run without --resume")
    tcfg = TuneConfig.from_dict(json.loads((out / "tune_config.json").read_text()))
    return tcfg, json.loads((out / "data.json").read_text())


def _check_resources(tcfg: TuneConfig, session, say: Callable[[str], None]) -> None:
    """A trial asking for more than the cluster has would wait forever: refuse it on a private local
    Ray, warn on a joined cluster (an autoscaler may still add the nodes)."""
    from cropray.ray_session import check_fits

    have = session.resources()
    for kind, want, got in (("CPU", tcfg.cpus_per_trial, have.cpus), ("GPU", tcfg.gpus_per_trial, have.gpus)):
        check_fits(kind, want, got, asked=f"--{kind.lower()}s-per-trial {want:g}", what="trial",
                   strict=session.private, say=say)


def _concurrency(tcfg: TuneConfig) -> int:
    import ray

    if tcfg.max_concurrent is not None:
        return tcfg.max_concurrent
    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    return int(max(1, min(tcfg.samples, cpus // tcfg.cpus_per_trial)))


def _tuner(out: Path, x, y, regime: str, tcfg: TuneConfig, resume: bool) -> tuple[tune.Tuner, str]:
    # The labelled crops go to the object store once; every trial reads the same (read-only) copy.
    trainable = tune.with_resources(
        tune.with_parameters(train_trial, data={"x": x, "y": y}, setup={"tune": tcfg.to_dict(), "regime": regime}),
        {"cpu": tcfg.cpus_per_trial, "gpu": tcfg.gpus_per_trial})
    searcher, kind = make_searcher(regime, tcfg, _concurrency(tcfg))
    if resume:
        # Finished, stopped and failed trials stay as they are (a failure here is deterministic: same
        # seed, same data); trials in flight when the driver died rerun from their first epoch.
        return tune.Tuner.restore(str(out / EXPERIMENT), trainable, resume_unfinished=True,
                                  resume_errored=False, restart_errored=False), kind
    # metric/mode live in TuneConfig only: ASHA takes them from there (giving them to both fails).
    baseline = default_point(SPACES[regime]) if tcfg.include_default else None
    asha = BaselineASHA(baseline, time_attr="training_iteration", max_t=tcfg.epochs, grace_period=tcfg.grace,
                        reduction_factor=tcfg.reduction_factor, stop_last_trials=False)
    tc = tune.TuneConfig(metric=tcfg.metric, mode=tcfg.mode, search_alg=searcher, scheduler=asha,
                         num_samples=tcfg.samples, time_budget_s=tcfg.time_budget_s,
                         trial_dirname_creator=_trial_dirname,
                         # One actor runs trial after trial: torch and cropray are imported once, not per
                         # trial (seconds each; small trials are otherwise mostly start-up).
                         reuse_actors=True)
    rc = tune.RunConfig(name=EXPERIMENT, storage_path=str(out),  # absolute: relative paths fail
                        failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
                        verbose=0, callbacks=[_Progress(tcfg.metric)])
    return tune.Tuner(trainable, tune_config=tc, run_config=rc), kind


def run_sweep(labels, out, tcfg: TuneConfig | None = None, *, crop_shape=None, address: str | None = None,
              resume: bool = False, overwrite: bool = False, bundle: bool = True,
              log: Callable[[str], None] | None = _stderr) -> dict[str, Any]:
    """Sweep the regime's space on the labelled archive `labels`, write every output to `out`, return a
    JSON-able summary. CroprayError (before any trial) for unusable labels, flags or OUT."""
    from cropray.archive import read_labeled
    from cropray.train import check_labels

    t0 = time.perf_counter()
    say = log or (lambda _m: None)
    from cropray.ray_session import require_absolute

    require_absolute(out, "--out", address)  # trials on other nodes write there too
    out = Path(out).expanduser().resolve()
    saved: dict = {}
    if resume:
        saved_cfg, saved = _load_saved(out)
        if tcfg is not None and tcfg != saved_cfg:
            say("resuming with the sweep's saved settings (tune_config.json); other flags are ignored")
        tcfg = saved_cfg
    tcfg = tcfg or TuneConfig()
    ls = read_labeled(labels, crop_shape=crop_shape)
    cc = check_labels(ls.y, where=str(labels))
    regime, warning = choose_regime(tcfg.regime, len(ls.y))
    if warning:
        say(f"warning: {warning}")
    check_fixed(tcfg, regime)
    fp = fingerprint(ls.x, ls.y)
    if resume and fp != saved.get("fingerprint"):
        raise CroprayError(f"{labels}: not the labelled set this sweep started on ({saved.get('labels')}, "
                           f"{saved.get('n_labels')} labels); resume with those labels or start a new sweep")
    if not resume:
        _prepare_out(out, overwrite)
    say(f"{len(ls.y)} labels ({cc[1]} signal, {cc[0]} not) -> {regime!r} space, {tcfg.samples} trials x "
        f"<= {tcfg.epochs} epochs, objective {tcfg.metric}")
    from cropray.ray_session import open_session

    session = open_session(address)  # embedded, --address, RAY_ADDRESS or reused (ray_session.py)
    try:
        _check_resources(tcfg, session, say=say)
        if not resume:  # what --resume must reuse (settings) and check (the labels)
            (out / "tune_config.json").write_text(json.dumps(tcfg.to_dict(), indent=2))
            (out / "data.json").write_text(json.dumps({"labels": str(labels), "n_labels": int(len(ls.y)),
                                                       "fingerprint": fp, "regime": regime}, indent=2))
        tuner, kind = _tuner(out, ls.x, ls.y, regime, tcfg, resume)
        with contextlib.redirect_stdout(sys.stderr):  # stdout is for the summary (--json) only
            tuner.fit()
    finally:
        session.close()
    t_sweep = time.perf_counter() - t0
    df, configs = trials_table(out / EXPERIMENT, regime)
    files = [str(p) for p in write_table(df, out)]
    files += [plot_params(df, regime, tcfg.metric, out / "sweep_params.png"),
              plot_progress(df, tcfg.metric, tcfg.mode, out / "sweep_progress.png")]
    n = counts(df)
    best = best_row(df, tcfg.metric)
    summary: dict[str, Any] = {
        "out": str(out), "experiment": str(out / EXPERIMENT), "labels": str(labels), "n_labels": int(len(ls.y)),
        "class_counts": {"signal": cc[1], "not_signal": cc[0]}, "invalid_rows": int(sum(ls.invalid.values())),
        "regime": regime, "regime_warning": warning, "search": kind, "metric": tcfg.metric, "mode": tcfg.mode,
        "epochs": tcfg.epochs, "trials": n, "resumed": resume, "best": None, "default": None, "bundle": None,
        "files": files, "settings": tcfg.to_dict(),
    }
    if tcfg.include_default and len(df) and df.iloc[0]["status"] in ("completed", "stopped"):
        d0 = df.iloc[0]
        summary["default"] = {"trial_id": d0["trial_id"], "value": float(d0[tcfg.metric]), "status": d0["status"],
                              "epochs_run": int(d0["epochs_run"])}
    t1 = time.perf_counter()
    if best is not None:
        params = configs[best["trial_id"]]
        best_cfg = build_train_config(params, regime, tcfg).replace(device="auto")
        (out / "best_config.json").write_text(json.dumps(best_cfg.to_dict(), indent=2))
        files.append(str(out / "best_config.json"))
        summary["best"] = {"trial_id": best["trial_id"], "value": float(best[tcfg.metric]), "params": params,
                           "epochs_run": int(best["epochs_run"]), "status": best["status"],
                           "oof_auc": _ci(best), "config": best_cfg.to_dict()}
        if bundle:
            from cropray.train import train_and_bundle

            say(f"retraining the best config ({best['trial_id']}) on all labels")
            extra = {"sweep": {"experiment": str(out / EXPERIMENT), "regime": regime, "search": kind,
                               "metric": tcfg.metric, "best_trial": best["trial_id"],
                               "best_value": float(best[tcfg.metric]), "trials": n}}
            s = train_and_bundle(labels, out / "bundle", best_cfg, k=tcfg.folds, crop_shape=crop_shape,
                                 overwrite=True, progress=False, log=log, extra=extra)
            summary["bundle"] = {"path": s["bundle"], "model_id": s["model_id"], "k": s["k"],
                                 "threshold": s["threshold"], "cv_roc_auc": s["cv_metrics"]["roc_auc"],
                                 "final_epochs": s["final_epochs"], "error": _check_bundle(s["bundle"], ls.x)}
            if summary["bundle"]["error"]:
                say(f"warning: {summary['bundle']['error']}")
    summary["seconds"] = {"sweep": round(t_sweep, 1), "retrain": round(time.perf_counter() - t1, 1),
                          "total": round(time.perf_counter() - t0, 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _check_bundle(path: str, x: np.ndarray) -> str | None:
    """The refit has no validation split: a configuration at the edge of stability can diverge there
    although its cross-validation did not. Score a few labelled crops; non-finite scores -> a message."""
    import torch

    from cropray.bundle import load_bundle

    with torch.inference_mode():
        scores = load_bundle(path).model(torch.from_numpy(np.ascontiguousarray(x[:64]))).float().numpy()
    if np.isfinite(scores).all():
        return None
    return (f"the bundle in {path} outputs non-finite scores (the refit on all labels diverged): do not use "
            "it; retrain best_config.json with another seed or a lower lr")


def _ci(row) -> dict | None:
    v = row.get("oof_auc")
    if v is None or not np.isfinite(v):
        return None
    return {"value": float(v), "lo": float(row["oof_auc_lo"]), "hi": float(row["oof_auc_hi"])}
