"""`run_demo`: the README's main job, end to end on the embedded local Ray.

Steps (each prints what it does; every output stays under the workdir):
  1. synth: a labelled set, a fresh labelled evaluation set (another seed), an unlabelled archive;
  2. tune: a small Ray Tune sweep over the label count's regime (labels only); the best config
     retrained on all labels into a model bundle;
  3. archive: the same best config retrained with signals injected into the unlabelled archive's
     backgrounds (cropray.demo.twin), cross-validated on the same folds; the paired rule picks what
     ships: dedoppler unless a learned bundle proves a gain over it on the same out-of-fold crops;
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
    from cropray.tune import TuneConfig, run_sweep

    t0 = time.perf_counter()
    wd = Path(cfg.workdir).expanduser().resolve()
    _prepare(wd, cfg.overwrite)
    paths = {k: wd / k for k in ("labels", "eval", "archive", "sweep", "with_archive", "physics", "scores",
                                  "report")}
    times: dict[str, float] = {}

    def step(name: str, msg: str):
        log(msg)
        times[name] = time.perf_counter()

    def done(name: str) -> None:
        times[name] = round(time.perf_counter() - times[name], 1)
        log(f"  {name} done in {times[name]:.1f} s")

    step("synth", f"1/6 synth: {cfg.labels} labelled + {cfg.eval_n} evaluation + {cfg.archive_n:,} unlabelled crops")
    arch = _synth_sets(cfg, paths)
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

        from cropray.archive import read_labeled

        ls = read_labeled(paths["labels"])  # the sweep's labels: every candidate is judged on them
        twin_r, with_oof, crops = None, None, None
        if cfg.archive_crops:
            step("archive", f"3/6 archive: the best config retrained with {cfg.archive_crops:,} archive backgrounds "
                 "(signals injected), cross-validated on the same folds")
            crops = twin.archive_crops(cfg, ls, paths, log=lambda m: log(f"  {m}"))
            twin_r, with_oof = twin.train_with_archive(cfg, sweep, tcfg, ls, crops, paths, log=lambda m: log(f"  {m}"))
            done("archive")
        sweep_bundle = sweep.bundle.to_dict()
        choice, bundle = _ship(cfg, sweep, tcfg, ls, twin_r, with_oof, crops, paths, log)

        step("score", f"4/6 score: {cfg.archive_n:,} crops through Ray Data with {bundle}")
        score = score_archive(ScoreConfig(bundle=str(bundle), input=str(paths["archive"]), output=str(paths["scores"])),
                              log=lambda m: log(f"  {m}"))
        done("score")

    summary = _summary(wd, cfg, paths, arch, sweep, score, bundle, choice)
    step("eval", f"5/6 eval: {'both bundles' if twin_r else 'the bundle'} on {cfg.eval_n} fresh labelled crops, "
         "and the dedoppler baseline")
    _evaluate(summary, twin_r, sweep_bundle, choice, paths)
    done("eval")

    step("report", "6/6 report: one HTML page")
    from cropray.demo.page import write_demo_page

    html = write_demo_page(wd / "report.html", summary, cfg)
    done("report")
    summary["report"] = str(html)
    summary["seconds"] = {**{k: v for k, v in times.items()}, "total": round(time.perf_counter() - t0, 1)}
    (wd / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _synth_sets(cfg: DemoConfig, paths: dict) -> dict:
    """The demo's three synthetic sets: labels, fresh evaluation crops and the unlabelled archive."""
    from cropray.synth import synth_archive

    synth_archive(paths["labels"], cfg.labels, files=1, labeled=True, seed=cfg.seed)
    synth_archive(paths["eval"], cfg.eval_n, files=1, labeled=True, seed=cfg.seed + 1)
    return synth_archive(paths["archive"], cfg.archive_n, files=cfg.archive_files, seed=cfg.seed + 2,
                         progress=sys.stderr.isatty())


def _summary(wd: Path, cfg: DemoConfig, paths: dict, arch: dict, sweep, score, bundle, choice: dict) -> dict:
    """The run's summary before evaluation and the report add theirs (WORKDIR/summary.json)."""
    return {
        "workdir": str(wd), "config": cfg.to_dict(), "paths": {k: str(v) for k, v in paths.items()},
        "archive": {"rows": arch["rows"], "files": arch["files"], "bytes": arch["bytes"]},
        "sweep": {k: sweep.to_dict()[k] for k in ("regime", "search", "metric", "trials", "best", "default", "bundle",
                                                  "seconds")},
        "score": score.to_dict(), "bundle": str(bundle), "shipped": choice["chosen"],
    }


def _ship(cfg: DemoConfig, sweep, tcfg, ls, twin_r: dict | None, with_oof, crops, paths: dict, log) -> tuple[dict, str]:
    """({"chosen", "reason", "gains"}, the bundle path that scores the archive) by the paired rule
    (cropray.demo.twin.choose): dedoppler, the labels-only bundle or the archive-trained one."""
    from cropray.demo import twin
    from cropray.models.policy import baseline_arch
    from cropray.tune.physics import baseline_scores, ship_physics

    chosen, why, gains = twin.choose(ls.y, baseline_scores(ls.x), twin.labels_only_oof(sweep, tcfg, ls), with_oof,
                                     seed=cfg.seed)
    sweep_is_physics = sweep.bundle.arch == baseline_arch()
    if chosen == "without" and sweep_is_physics:  # the sweep judged its winner on the same rule: it already fell back
        chosen, why = "dedoppler", f"{why}; the sweep itself shipped dedoppler ({sweep.bundle.physics})"
    log(f"  {why}")
    if chosen == "with":
        path = twin_r["bundle"]
    elif chosen == "without" or (sweep_is_physics and cfg.target_fpr is None):
        path = sweep.bundle.path
    else:  # dedoppler, thresholded by the demo's rule (the target false-alarm rate needs the archive's backgrounds)
        use = cfg.target_fpr is not None and crops is not None
        r = ship_physics(paths["labels"], paths["physics"], ls, folds=tcfg.folds, seed=cfg.seed,
                         archive=str(paths["archive"]) if use else None, inject=twin.inject_config(cfg) if use else None,
                         prior_archive=crops if use else None, target_fpr=cfg.target_fpr if use else None,
                         extra={"demo": {"reason": why}}, log=lambda m: log(f"  {m}"))
        path = r.bundle
    return {"chosen": chosen, "reason": why, "gains": gains}, path


def _evaluate(summary: dict, twin_r: dict | None, sweep_bundle: dict, choice: dict, paths: dict) -> None:
    """summary["eval"]: the shipped bundle on the fresh crops (with the report's plots);
    summary["comparison"]: both bundles and dedoppler, CV on the labels and eval on the fresh crops."""
    from cropray.demo import twin
    from cropray.evaluate.job import evaluate_bundle

    shipped = str(summary["bundle"])

    def ev(path):
        return evaluate_bundle(path, paths["eval"], report=paths["report"] if str(path) == shipped else None)

    ev_without = ev(sweep_bundle["path"])
    ev_with = ev(twin_r["bundle"]) if twin_r is not None else None
    shipped_ev = next((e for p, e in ((sweep_bundle["path"], ev_without), (twin_r and twin_r["bundle"], ev_with))
                       if p is not None and str(p) == shipped), None) or ev(shipped)
    dd_fresh, dd_labels = twin.dedoppler_metrics(paths["eval"]), twin.dedoppler_metrics(paths["labels"])
    summary["eval"] = shipped_ev.to_dict()
    summary["baseline_dedoppler_auc"] = dd_fresh["roc_auc"]["value"]
    summary["comparison"] = twin.comparison(sweep_bundle, twin_r, ev_without.to_dict(),
                                            ev_with.to_dict() if ev_with else None, dd_fresh, dd_labels, choice)
    if choice["chosen"] == "dedoppler":
        summary["comparison"]["dedoppler"].update(bundle=shipped, model_id=shipped_ev.model_id)
