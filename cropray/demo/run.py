"""`run_demo`: the README's main job, end to end on the embedded local Ray.

Steps (each prints what it does; every output stays under the workdir):
  1. synth: a labelled set, a fresh labelled evaluation set (another seed), an unlabelled archive;
  2. tune: a small Ray Tune sweep over the label count's regime (labels only); the best config
     retrained on all labels into a model bundle;
  3. archive: the same best config retrained with signals injected into the unlabelled archive's
     backgrounds (cropray.demo.twin), cross-validated on the same folds; the better CV ROC-AUC ships;
  4. score: the unlabelled archive through Ray Data with the shipped bundle (exactly-once, resumable);
  5. eval: both bundles on the fresh labelled crops (plots for the shipped one), beside dedoppler;
  6. report: one self-contained HTML page.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from cropray.demo.config import DemoConfig
from cropray.errors import CroprayError


def _say(msg: str) -> None:
    print(f"[demo] {msg}", file=sys.stderr, flush=True)


def _prepare(workdir: Path, overwrite: bool) -> None:
    if workdir.exists() and not workdir.is_dir():
        raise CroprayError(f"--workdir {workdir} is a file")
    if workdir.is_dir() and any(workdir.iterdir()):
        if not overwrite:
            raise CroprayError(f"--workdir {workdir} is not empty; pass --overwrite to replace it")
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def _plain_ctrl_c():
    """Ray Tune traps the first SIGINT to stop "gracefully": the sweep then returns and the demo would go
    on to retrain and score. The demo has nothing to resume, so one Ctrl-C must stop it: Tune's
    handler off (TUNE_DISABLE_SIGINT_HANDLER, read by every Tuner.fit), KeyboardInterrupt as usual."""
    saved = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = saved


def run_demo(cfg: DemoConfig, log=_say) -> dict[str, Any]:
    """Run every step; return the summary (also written to WORKDIR/summary.json)."""
    import ray

    from cropray.demo import twin
    from cropray.ray_session import joins_cluster, ray_session
    from cropray.scoring import ScoreConfig, score_archive
    from cropray.synth import synth_archive
    from cropray.tune import TuneConfig, run_sweep

    t0 = time.perf_counter()
    wd = Path(cfg.workdir).expanduser().resolve()
    _prepare(wd, cfg.overwrite)
    paths = {k: wd / k for k in ("labels", "eval", "archive", "sweep", "with_archive", "scores", "report")}
    times: dict[str, float] = {}

    def step(name: str, msg: str):
        log(msg)
        times[name] = time.perf_counter()

    def done(name: str) -> None:
        times[name] = round(time.perf_counter() - times[name], 1)
        log(f"  {name} done in {times[name]:.1f} s")

    step("synth", f"1/6 synth: {cfg.labels} labelled + {cfg.eval_n} evaluation + {cfg.archive_n:,} unlabelled crops")
    synth_archive(paths["labels"], cfg.labels, files=1, labeled=True, seed=cfg.seed)
    synth_archive(paths["eval"], cfg.eval_n, files=1, labeled=True, seed=cfg.seed + 1)
    arch = synth_archive(paths["archive"], cfg.archive_n, files=cfg.archive_files, seed=cfg.seed + 2,
                         progress=sys.stderr.isatty())
    done("synth")

    if not ray.is_initialized() and not joins_cluster(None):
        log("starting an embedded local Ray (token auth on, loopback only, no dashboard or metrics ports)")
    # One session for the sweep and the scoring: both reuse it (cropray/ray_session.py).
    with ray_session():
        step("tune", f"2/6 tune: {cfg.samples} trials x <= {cfg.epochs} epochs, cross-validated, ASHA early stopping")
        tcfg = TuneConfig(samples=cfg.samples, epochs=cfg.epochs, seed=cfg.seed)
        with _plain_ctrl_c():
            sweep = run_sweep(paths["labels"], paths["sweep"], tcfg, log=lambda m: log(f"  {m}"))
        if not sweep.get("bundle"):
            raise CroprayError(f"the sweep produced no bundle (trials: {sweep.get('trials')}); see {paths['sweep']}")
        done("tune")

        twin_r = None
        if cfg.archive_crops:
            step("archive", f"3/6 archive: the best config retrained with {cfg.archive_crops:,} archive backgrounds "
                 "(signals injected), cross-validated on the same folds")
            twin_r = twin.train_with_archive(cfg, sweep, tcfg, paths, log=lambda m: log(f"  {m}"))
            done("archive")
        sweep_bundle, (chosen, bundle) = sweep.bundle.to_dict(), _ship(sweep, twin_r, log)

        step("score", f"4/6 score: {cfg.archive_n:,} crops through Ray Data with {bundle}")
        score = score_archive(ScoreConfig(bundle=str(bundle), input=str(paths["archive"]), output=str(paths["scores"])),
                              log=lambda m: log(f"  {m}"))
        done("score")

    summary = {
        "workdir": str(wd), "config": cfg.to_dict(), "paths": {k: str(v) for k, v in paths.items()},
        "archive": {"rows": arch["rows"], "files": arch["files"], "bytes": arch["bytes"]},
        "sweep": {k: sweep.to_dict()[k] for k in ("regime", "search", "metric", "trials", "best", "default", "bundle",
                                                  "seconds")},
        "score": score.to_dict(), "bundle": str(bundle),
    }
    step("eval", f"5/6 eval: {'both bundles' if twin_r else 'the bundle'} on {cfg.eval_n} fresh labelled crops, "
         "and the dedoppler baseline")
    _evaluate(summary, twin_r, sweep_bundle, chosen, paths)
    done("eval")

    step("report", "6/6 report: one HTML page")
    from cropray.demo.page import write_demo_page

    html = write_demo_page(wd / "report.html", summary, cfg)
    done("report")
    summary["report"] = str(html)
    summary["seconds"] = {**{k: v for k, v in times.items()}, "total": round(time.perf_counter() - t0, 1)}
    (wd / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _ship(sweep, twin_r: dict | None, log) -> tuple[str, str]:
    """("with" | "without", the bundle path that scores the archive): the better CV ROC-AUC."""
    from cropray.demo import twin

    chosen, why = twin.choose(sweep.bundle.cv_roc_auc, twin_r["cv_metrics"]["roc_auc"] if twin_r else None)
    log(f"  shipping the {'archive-trained' if chosen == 'with' else 'labels-only'} bundle: {why}")
    return chosen, (twin_r["bundle"] if chosen == "with" else sweep.bundle.path)


def _evaluate(summary: dict, twin_r: dict | None, sweep_bundle: dict, chosen: str, paths: dict) -> None:
    """summary["eval"]: the shipped bundle on the fresh crops (with the report's plots);
    summary["comparison"]: both bundles and dedoppler, CV on the labels and eval on the fresh crops."""
    from cropray.demo import twin
    from cropray.evaluate.job import evaluate_bundle

    ev_without = evaluate_bundle(sweep_bundle["path"], paths["eval"], report=None if chosen == "with" else paths["report"])
    ev_with = None
    if twin_r is not None:
        ev_with = evaluate_bundle(twin_r["bundle"], paths["eval"], report=paths["report"] if chosen == "with" else None)
    dd_fresh, dd_labels = twin.dedoppler_metrics(paths["eval"]), twin.dedoppler_metrics(paths["labels"])
    ev = ev_with if chosen == "with" else ev_without
    summary["eval"] = ev.to_dict()
    summary["baseline_dedoppler_auc"] = dd_fresh["roc_auc"]["value"]
    summary["comparison"] = twin.comparison(sweep_bundle, twin_r, ev_without.to_dict(),
                                            ev_with.to_dict() if ev_with else None, dd_fresh, dd_labels)
