"""`run_demo`: the README's main job, end to end on the embedded local Ray.

Steps (each prints what it does; every output stays under the workdir):
  1. synth: a labelled set, a fresh labelled evaluation set (another seed), an unlabelled archive;
  2. tune: a small Ray Tune sweep over the label count's regime; the best config retrained on all
     labels into a model bundle;
  3. score: the unlabelled archive through Ray Data (exactly-once, resumable output);
  4. eval: the bundle on the fresh labelled crops (plots), next to the label-free dedoppler baseline;
  5. report: one self-contained HTML page.
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


def _baseline_auc(eval_path: Path) -> float | None:
    """ROC-AUC of the label-free dedoppler baseline on the evaluation set: how far learning beats physics."""
    from sklearn.metrics import roc_auc_score

    from cropray.archive import read_labeled
    from cropray.evaluate.job import score_array
    from cropray.models import build_model
    from cropray.models.policy import baseline_arch

    ls = read_labeled(eval_path)
    s = score_array(build_model(baseline_arch()), ls.x)
    return float(roc_auc_score(ls.y, s))


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

    from cropray.evaluate.job import evaluate_bundle
    from cropray.ray_session import joins_cluster, ray_session
    from cropray.scoring import ScoreConfig, score_archive
    from cropray.synth import synth_archive
    from cropray.tune import TuneConfig, run_sweep

    t0 = time.perf_counter()
    wd = Path(cfg.workdir).expanduser().resolve()
    _prepare(wd, cfg.overwrite)
    paths = {k: wd / k for k in ("labels", "eval", "archive", "sweep", "scores", "report")}
    times: dict[str, float] = {}

    def step(name: str, msg: str):
        log(msg)
        times[name] = time.perf_counter()

    def done(name: str) -> None:
        times[name] = round(time.perf_counter() - times[name], 1)
        log(f"  {name} done in {times[name]:.1f} s")

    step("synth", f"1/5 synth: {cfg.labels} labelled + {cfg.eval_n} evaluation + {cfg.archive_n:,} unlabelled crops")
    synth_archive(paths["labels"], cfg.labels, files=1, labeled=True, seed=cfg.seed)
    synth_archive(paths["eval"], cfg.eval_n, files=1, labeled=True, seed=cfg.seed + 1)
    arch = synth_archive(paths["archive"], cfg.archive_n, files=cfg.archive_files, seed=cfg.seed + 2,
                         progress=sys.stderr.isatty())
    done("synth")

    if not ray.is_initialized() and not joins_cluster(None):
        log("starting an embedded local Ray (token auth on, loopback only, no dashboard or metrics ports)")
    # One session for the sweep and the scoring: both reuse it (cropray/ray_session.py).
    with ray_session():
        step("tune", f"2/5 tune: {cfg.samples} trials x <= {cfg.epochs} epochs, cross-validated, ASHA early stopping")
        tcfg = TuneConfig(samples=cfg.samples, epochs=cfg.epochs, seed=cfg.seed)
        with _plain_ctrl_c():
            sweep = run_sweep(paths["labels"], paths["sweep"], tcfg, log=lambda m: log(f"  {m}"))
        if not sweep.get("bundle"):
            raise CroprayError(f"the sweep produced no bundle (trials: {sweep.get('trials')}); see {paths['sweep']}")
        bundle = sweep["bundle"]["path"]
        done("tune")

        step("score", f"3/5 score: {cfg.archive_n:,} crops through Ray Data with {bundle}")
        score = score_archive(ScoreConfig(bundle=str(bundle), input=str(paths["archive"]), output=str(paths["scores"])),
                              log=lambda m: log(f"  {m}"))
        done("score")

    step("eval", f"4/5 eval: the bundle on {cfg.eval_n} fresh labelled crops, and the dedoppler baseline")
    ev = evaluate_bundle(bundle, paths["eval"], report=paths["report"])
    base_auc = _baseline_auc(paths["eval"])
    done("eval")

    step("report", "5/5 report: one HTML page")
    from cropray.demo.page import write_demo_page

    summary = {
        "workdir": str(wd), "config": cfg.to_dict(), "paths": {k: str(v) for k, v in paths.items()},
        "archive": {"rows": arch["rows"], "files": arch["files"], "bytes": arch["bytes"]},
        "sweep": {k: sweep.to_dict()[k] for k in ("regime", "search", "metric", "trials", "best", "default", "bundle",
                                                  "seconds")},
        "score": score.to_dict(), "eval": ev.to_dict(), "baseline_dedoppler_auc": base_auc, "bundle": str(bundle),
    }
    html = write_demo_page(wd / "report.html", summary, cfg)
    done("report")
    summary["report"] = str(html)
    summary["seconds"] = {**{k: v for k, v in times.items()}, "total": round(time.perf_counter() - t0, 1)}
    (wd / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary
