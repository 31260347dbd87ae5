"""`run_sweep`: the whole `cropray tune` job as one library call.

read labels -> pick the regime -> Tuner(with_resources(with_parameters(train_trial, data)), ASHA that
stops on the inner-validation ROC-AUC and never stops trial 0 (the default config),
ConcurrencyLimiter(Optuna TPE | random)) -> trials table, plots, best_config.json (the best trial by
the objective) -> a bundle: the best config retrained on all labels (the same `train_and_bundle` as
`cropray train`) when its paired ROC-AUC gain over physics is proven, else the label-free `dedoppler`
(cropray.tune.physics).

Layout of OUT: tune_config.json, data.json and trials/ (cropray's own JSON record of the sweep, what
--resume rebuilds it from: `cropray.tune.records`), sweep/ (Tune's experiment dir; a resumed run writes
sweep-resume-K/ beside it and never reads Tune's pickled state), trials.parquet, trials.csv,
sweep_params.png, sweep_progress.png, best_config.json (a TrainConfig: `cropray train --config` accepts
it), bundle/, summary.json.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from ray import tune

import cropray.tune.sweep_archive as sweep_archive
from cropray.errors import CroprayError
from cropray.tune.config import TuneConfig
from cropray.tune.oof import cv_from_record, fingerprint
from cropray.tune.plots import plot_params, plot_progress
from cropray.tune.records import (
    DATA,
    FINISHED,
    RECORDS,
    TUNE_CONFIG,
    load_state,
    make_record,
    record_path,
    status_of,
    write_json,
)
from cropray.tune.results import (
    BestTrial,
    DefaultTrial,
    SweepBundle,
    SweepSeconds,
    TuneResult,
    best_row,
    counts,
    error_line,
    trials_table,
    write_table,
)
from cropray.tune.scheduler import STOP_METRIC, STOP_MODE, BaselineASHA
from cropray.tune.search import make_searcher, resolve_search
from cropray.tune.spaces import SPACES, choose_regime, default_point
from cropray.tune.trainable import TrialData, TrialSetup, build_train_config, check_fixed, train_trial

EXPERIMENT = "sweep"
OUTPUTS = ("sweep", "trials", "tune_config.json", "data.json", "trials.parquet", "trials.csv", "sweep_params.png",
           "sweep_progress.png", "best_config.json", "bundle", "summary.json")


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# Test hook: with CROPRAY_TEST_KILL_AFTER_TRIALS=N the driver SIGKILLs itself right after writing the
# record of the Nth trial finished in this process (tests/tune/test_tune_sweep.py): a sweep interrupted
# at a known point instead of a race between a polling test and the trials. Unset: nothing.
KILL_AFTER_TRIALS_ENV = "CROPRAY_TEST_KILL_AFTER_TRIALS"


def _kill_after_trials_hook(finished: int) -> None:
    n = os.environ.get(KILL_AFTER_TRIALS_ENV)
    if n and finished >= int(n):
        os.kill(os.getpid(), signal.SIGKILL)


class _Recorder(tune.Callback):
    """Writes cropray's record of every trial (OUT/trials/trial-NNNN.json: what --resume rebuilds the
    sweep from) and one stderr line per finished trial (Tune's own table is off: it would interleave
    with --json). Trial numbers run on across resumed runs: this run's first `len(reruns)` trials are
    the reruns (proposed first, in order) and keep their numbers; the next ones count on from `base`."""

    def __init__(self, out: Path, metric: str, experiment: str, reruns: list[int], base: int):
        self.out, self.metric, self.experiment, self.reruns, self.base = out, metric, experiment, reruns, base
        self.index: dict[str, int] = {}
        self.finished = 0  # trials finished in this process (the test hook counts them)

    def _number(self, trial) -> int:
        if trial.trial_id not in self.index:
            c = int(trial.experiment_tag.split("_", 1)[0])  # 1-based creation counter of this run
            u = len(self.reruns)
            self.index[trial.trial_id] = self.reruns[c - 1] if c <= u else self.base + c - u - 1
        return self.index[trial.trial_id]

    def _write(self, trial, status: str, error: str | None = None) -> None:
        n = self._number(trial)
        write_json(record_path(self.out, n), make_record(n, trial.trial_id, trial.config, status,
                                                         trial.last_result or {}, error, self.experiment))

    def on_step_end(self, iteration, trials, **info):
        for t in trials:  # a trial appears: record its config before it can finish
            if t.trial_id not in self.index:
                self._write(t, "running")

    def on_trial_complete(self, iteration, trials, trial, **info):
        r = trial.last_result or {}
        self._write(trial, status_of(r))
        how = "completed" if r.get("finished") else f"stopped at epoch {r.get('epoch', 0)}"
        value = r.get(self.metric, float("nan"))
        _stderr(f"trial {trial.trial_id}: {how}, {self.metric} {value:.4f}  {trial.config.get('arch', '')}")
        self.finished += 1
        _kill_after_trials_hook(self.finished)  # a no-op unless a test arms it

    def on_trial_error(self, iteration, trials, trial, **info):
        path = Path(trial.error_file) if trial.error_file else None  # error.txt: text, not the pickle
        self._write(trial, "failed", error_line(path.read_text(errors="replace")) if path and path.is_file()
                    else "failed (no error.txt)")
        _stderr(f"trial {trial.trial_id}: FAILED (see {trial.path}/error.txt)")


def _trial_dirname(trial) -> str:
    return f"trial_{trial.trial_id}"  # short: the default name repeats every parameter


def _prepare_out(out: Path, overwrite: bool) -> None:
    """A fresh sweep needs an empty OUT; --overwrite removes only the sweep's own outputs."""
    if out.exists() and not out.is_dir():
        raise CroprayError(f"{out}: exists and is not a directory")
    if out.exists() and any(p.name != "_lock" for p in out.iterdir()):  # _lock: cropray.outlock
        if not overwrite:
            hint = " (a sweep is there: --resume continues it)" if (out / EXPERIMENT).exists() else ""
            raise CroprayError(f"{out}: already exists and is not empty{hint}; pass --overwrite to replace it")
        for p in [out / name for name in OUTPUTS] + list(out.glob(f"{EXPERIMENT}-resume-*")):
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _check_same_sweep(saved: dict, labels, fp: str, regime: str) -> None:
    if fp != saved["fingerprint"]:
        raise CroprayError(f"{labels}: not the labelled set this sweep started on ({saved['labels']}, "
                           f"{saved['n_labels']} labels); resume with those labels or start a new sweep")
    if regime != saved["regime"]:
        raise CroprayError(f"data.json: this sweep searched the {saved['regime']!r} space, these settings give "
                           f"{regime!r}; the sweep state was edited - start a new sweep")


def _write_state(out: Path, tcfg: TuneConfig, labels, n_labels: int, fp: str, regime: str,
                 archive: dict | None) -> None:
    """What --resume must reuse (settings, archive) and check (the labels); trials/ fills as trials appear."""
    write_json(out / TUNE_CONFIG, tcfg.to_dict())
    write_json(out / DATA, {"labels": str(labels), "n_labels": n_labels, "fingerprint": fp, "regime": regime,
                            "archive": archive})
    (out / RECORDS).mkdir(exist_ok=True)


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


def _tuner(out: Path, data: TrialData, regime: str, tcfg: TuneConfig,
           records: list[dict]) -> tuple[tune.Tuner | None, str]:
    """(a Tuner for what the sweep still lacks, or None when nothing is left; the search kind).
    A fresh sweep (no records) runs `samples` trials. A resumed one keeps its finished, stopped and
    failed trials (a failure is deterministic: same seed, same data), reruns the ones in flight from
    their first epoch with the same config, and draws the trials never started."""
    reruns = [r for r in records if r["status"] not in FINISHED]
    base = max((r["trial"] for r in records), default=-1) + 1
    n_run = len(reruns) + max(0, tcfg.samples - base)
    if not n_run:
        return None, resolve_search(tcfg.search)
    done = [(r["config"], None if r["status"] == "failed" else r["result"].get(tcfg.metric))
            for r in records if r["status"] in FINISHED]
    searcher, kind = make_searcher(regime, tcfg, min(n_run, _concurrency(tcfg)), done=done,
                                   reruns=[r["config"] for r in reruns] if records else None,
                                   draws=max(0, base - int(tcfg.include_default)))
    k = len(list(out.glob(f"{EXPERIMENT}-resume-*")))
    name = EXPERIMENT if not (out / EXPERIMENT).exists() else f"{EXPERIMENT}-resume-{k + 1}"
    recorder = _Recorder(out, tcfg.metric, name, [r["trial"] for r in reruns], base)
    # The labelled crops go to the object store once; every trial reads the same (read-only) copy.
    trainable = tune.with_resources(
        tune.with_parameters(train_trial, data=data, setup=TrialSetup(tune=tcfg, regime=regime)),
        {"cpu": tcfg.cpus_per_trial, "gpu": tcfg.gpus_per_trial})
    # ASHA stops on the inner-validation figure (STOP_METRIC), the searcher learns from and the table ranks
    # by the objective (tcfg.metric): each gets its own metric, so Tune's TuneConfig names none (a metric
    # given both there and to a scheduler is refused).
    baseline = default_point(SPACES[regime]) if tcfg.include_default else None
    asha = BaselineASHA(baseline, time_attr="training_iteration", metric=STOP_METRIC, mode=STOP_MODE,
                        max_t=tcfg.epochs, grace_period=tcfg.grace, reduction_factor=tcfg.reduction_factor,
                        stop_last_trials=False)
    tc = tune.TuneConfig(search_alg=searcher, scheduler=asha,
                         num_samples=n_run, time_budget_s=tcfg.time_budget_s,
                         trial_dirname_creator=_trial_dirname,
                         # One actor runs trial after trial: torch and cropray are imported once, not per
                         # trial (seconds each; small trials are otherwise mostly start-up).
                         reuse_actors=True)
    rc = tune.RunConfig(name=name, storage_path=str(out),  # absolute: relative paths fail
                        failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
                        verbose=0, callbacks=[recorder])
    return tune.Tuner(trainable, tune_config=tc, run_config=rc), kind


def run_sweep(labels, out, tcfg: TuneConfig | None = None, *, crop_shape=None, address: str | None = None,
              resume: bool = False, overwrite: bool = False, bundle: bool = True, archive=None, inject=None,
              target_fpr: float | None = None, log: Callable[[str], None] | None = _stderr) -> TuneResult:
    """Sweep the regime's space on the labelled archive `labels`, write every output to `out`, return the
    typed result (OUT/summary.json is its to_dict()). CroprayError (before any trial) for unusable labels,
    flags, OUT, archive or sweep state. `archive` (with `inject`, an InjectConfig; default the sweep's
    seed): injected crops from that unlabelled archive join every trial's training folds and the retrain
    (cropray.tune.sweep_archive); a resumed sweep reuses its own and refuses others. `target_fpr` (needs
    an archive): the refit's threshold from held-back screened backgrounds (cropray.train.threshold)."""
    from cropray.archive import read_labeled
    from cropray.train import check_labels

    t0 = time.perf_counter()
    say = log or (lambda _m: None)
    from cropray.ray_session import require_absolute

    require_absolute(out, "--out", address)  # trials on other nodes write there too
    out = Path(out).expanduser().resolve()
    saved, records = {}, []
    if resume:
        saved_cfg, saved, records = load_state(out)  # JSON records only: nothing is unpickled
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
    if resume:
        _check_same_sweep(saved, labels, fp, regime)
    archive, inject = sweep_archive.resolve(archive, inject, saved if resume else None, tcfg.seed)
    from cropray.train.jobspec import check_target_fpr

    check_target_fpr(target_fpr, archive)  # before any trial
    crops, archive_info = sweep_archive.build(archive, ls.x, ls.y, inject, crop_shape=crop_shape, say=say)
    if resume:
        sweep_archive.check_same(saved, archive_info)
    else:
        _prepare_out(out, overwrite)
    say(f"{len(ls.y)} labels ({cc[1]} signal, {cc[0]} not) -> {regime!r} space, {tcfg.samples} trials x "
        f"<= {tcfg.epochs} epochs, objective {tcfg.metric}")
    if records:
        kept = sum(r["status"] in FINISHED for r in records)
        say(f"resuming: {kept} finished trial(s) kept, {len(records) - kept} in flight rerun from epoch 1")
    from cropray.ray_session import open_session

    session = open_session(address)  # embedded, --address, RAY_ADDRESS or reused (ray_session.py)
    try:
        _check_resources(tcfg, session, say=say)
        if not resume:
            _write_state(out, tcfg, labels, int(len(ls.y)), fp, regime,
                         sweep_archive.state(archive, inject, archive_info))
        tuner, kind = _tuner(out, TrialData(x=ls.x, y=ls.y, extra=crops), regime, tcfg, records)
        if tuner is not None:
            with contextlib.redirect_stdout(sys.stderr):  # stdout is for the summary (--json) only
                tuner.fit()
    finally:
        session.close()
    t_sweep = time.perf_counter() - t0
    summary = dataclasses.replace(_report(out, labels, ls, cc, regime, warning, kind, tcfg, resume),
                                  archive=archive_info)
    t1 = time.perf_counter()
    if summary.best is not None and bundle:
        summary = dataclasses.replace(summary, bundle=_retrain(out, labels, ls, summary, crop_shape, tcfg, log,
                                                               Refit(archive, inject, crops, archive_info, target_fpr)))
    summary = dataclasses.replace(summary, seconds=SweepSeconds(
        sweep=round(t_sweep, 1), retrain=round(time.perf_counter() - t1, 1), total=round(time.perf_counter() - t0, 1)))
    write_json(out / "summary.json", json.loads(json.dumps(summary.to_dict(), default=str)))
    return summary


def _report(out: Path, labels, ls, cc, regime: str, warning, kind: str, tcfg: TuneConfig,
            resume: bool) -> TuneResult:
    """The summary of the trials recorded so far; writes the table, the plots and best_config.json."""
    df, configs = trials_table(load_state(out)[2], regime)
    files = [str(p) for p in write_table(df, out)]
    files += [plot_params(df, regime, tcfg.metric, out / "sweep_params.png"),
              plot_progress(df, tcfg.metric, tcfg.mode, out / "sweep_progress.png")]
    best = best_row(df, tcfg.metric)
    default = chosen = None
    if tcfg.include_default and len(df) and df.iloc[0]["status"] in ("completed", "stopped"):
        d0 = df.iloc[0]
        default = DefaultTrial(trial_id=d0["trial_id"], value=float(d0[tcfg.metric]), status=d0["status"],
                               epochs_run=int(d0["epochs_run"]))
    if best is not None:
        params = configs[best["trial_id"]]
        best_cfg = build_train_config(params, regime, tcfg).replace(device="auto")
        write_json(out / "best_config.json", best_cfg.to_dict())
        files.append(str(out / "best_config.json"))
        chosen = BestTrial(trial_id=best["trial_id"], value=float(best[tcfg.metric]), params=params,
                           epochs_run=int(best["epochs_run"]), status=best["status"], oof_auc=_ci(best),
                           config=best_cfg.to_dict())
    return TuneResult(
        out=str(out), experiment=str(out / EXPERIMENT), labels=str(labels), n_labels=int(len(ls.y)),
        class_counts={"signal": cc[1], "not_signal": cc[0]}, invalid_rows=int(sum(ls.invalid.values())),
        regime=regime, regime_warning=warning, search=kind, metric=tcfg.metric, mode=tcfg.mode,
        epochs=tcfg.epochs, trials=counts(df), resumed=resume, best=chosen, default=default, bundle=None,
        files=files, settings=tcfg.to_dict(), stop_metric=STOP_METRIC)


def trial_cv(out: Path, ls, best, tcfg: TuneConfig):
    """(CVResult of the best trial's own out-of-fold work, how the bundle's CV was obtained) - or
    (None, why it must be cross-validated again): a trial stopped early, or a record that does not
    match these labels and the folds `cropray train` draws (cropray.tune.oof)."""
    from cropray.train import TrainConfig
    from cropray.train.fit import resolve

    rec = next((r for r in load_state(out)[2] if r["trial_id"] == best.trial_id), None)
    if rec is None or rec.get("oof") is None:
        return None, f"cross-validated again: trial {best.trial_id} kept no out-of-fold scores ({best.status})"
    cfg = resolve(TrainConfig.from_dict(best.config), len(ls.y))
    cv, why = cv_from_record(rec["oof"], cfg, ls.x, ls.y, k=tcfg.folds, snr=ls.snr)
    if cv is None:
        return None, f"cross-validated again: trial {best.trial_id}'s record does not fit ({why})"
    return cv, f"trial {best.trial_id}'s out-of-fold scores (same labels, folds and seed; not rerun)"


@dataclasses.dataclass(frozen=True)
class Refit:
    """What the refit takes beyond the labels: the archive, its injection settings and the crops the
    sweep already built from it, and the threshold rule (target_fpr None: Youden's J)."""

    archive: str | None = None
    inject: object = None
    crops: object = None
    archive_info: dict | None = None
    target_fpr: float | None = None


def _retrain(out: Path, labels, ls, s: TuneResult, crop_shape, tcfg: TuneConfig, log, refit: Refit) -> SweepBundle:
    """The bundle in OUT/bundle, by the paired rule of `cropray train` (cropray.tune.physics): the best
    configuration retrained on all labels when its paired ROC-AUC gain over physics on its out-of-fold
    crops is proven (threshold and CV metrics from the winning trial's out-of-fold scores when they fit,
    `trial_cv`), else the label-free baseline."""
    from cropray.models.policy import arch_spec
    from cropray.train import PriorWork, TrainConfig, TrainJob, train_and_bundle
    from cropray.tune.physics import baseline_scores, gain_over_physics

    best = s.best
    say = log or (lambda _m: None)
    cv, how = trial_cv(out, ls, best, tcfg)
    extra = {"sweep": {"experiment": s.experiment, "regime": s.regime, "search": s.search,
                       "metric": tcfg.metric, "best_trial": best.trial_id, "best_value": best.value,
                       "trials": s.trials.to_dict(), "cv_source": how}}
    learned = not arch_spec(best.config["arch"]).fit_free
    gain = None
    if learned and cv is not None:  # decided before any refit: an unproven winner is never refit
        gain = gain_over_physics(ls.y, cv.oof_scores, baseline_scores(ls.x), tcfg.seed)
    if gain is None or gain["proven"]:
        say(f"retraining the best config ({best.trial_id}) on all labels; CV: {how}")
        job = TrainJob(labels=labels, out=out / "bundle", config=TrainConfig.from_dict(best.config),
                       folds=tcfg.folds, crop_shape=crop_shape, overwrite=True, progress=False, extra=extra,
                       archive=refit.archive, inject=refit.inject, target_fpr=refit.target_fpr)
        prior = PriorWork(labeled=ls,  # the labels the sweep read: the archive is read once per job
                          cv=cv, archive=None if refit.archive is None else (refit.crops, refit.archive_info))
        r = train_and_bundle(job, prior, log=log)
        gain = r.gain_vs_physics if learned else None  # after a second CV, train measured it
    physics = None
    if gain is not None and not gain["proven"]:
        r, physics, how = _ship_physics(out, labels, ls, best, gain, crop_shape, tcfg, log, refit, extra)
    b = SweepBundle(path=r.bundle, model_id=r.model_id, k=r.k, threshold=r.threshold, threshold_rule=r.threshold_rule,
                    gain_vs_physics=gain, arch=r.arch, physics=physics,
                    cv_roc_auc=r.cv_metrics["roc_auc"], final_epochs=r.final_epochs, error=_check_bundle(r.bundle, ls.x),
                    cv_source=how)
    if b.error and log:
        log(f"warning: {b.error}")
    return b


def _ship_physics(out: Path, labels, ls, best, gain: dict, crop_shape, tcfg: TuneConfig, log, refit: Refit,
                  extra: dict) -> tuple:
    """(TrainResult of the label-free baseline's bundle in OUT/bundle, why it ships, its CV source)."""
    from cropray.models.policy import baseline_arch
    from cropray.train.select import CI
    from cropray.tune.physics import ship_physics

    base = baseline_arch()
    why = (f"the best trial {best.trial_id} ({best.config['arch']}) has a paired ROC-AUC gain over {base} of "
           f"{gain['gain']:+.4f} [{gain['lo']:+.4f}, {gain['hi']:+.4f}] ({CI:.0%}) on the same out-of-fold crops: "
           f"not proven (the lower bound is not above zero), so {base} ships")
    (log or (lambda _m: None))(why)
    how = f"{base}'s scores on the same folds (label-free: nothing to cross-validate)"
    sweep = {**extra["sweep"], "cv_source": how, "shipped": base, "physics": why, "winner_gain_vs_physics": gain}
    r = ship_physics(labels, out / "bundle", ls, folds=tcfg.folds, seed=tcfg.seed, crop_shape=crop_shape,
                     archive=refit.archive, inject=refit.inject, prior_archive=(refit.crops, refit.archive_info),
                     target_fpr=refit.target_fpr, extra={"sweep": sweep}, log=log)
    return r, why, how


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
