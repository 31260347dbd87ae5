"""Real sweeps on the shared 2-CPU Ray session: outputs, a failing trial, an interrupted sweep resumed."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY_FIXED

from cropray.archive import read_labeled
from cropray.bundle import load_bundle
from cropray.train import TrainConfig
from cropray.tune import SPACES, TuneConfig, default_point
from cropray.tune.search import RandomSearch
from cropray.tune.sweep import KILL_AFTER_TRIALS_ENV, run_sweep

OUTPUTS = ("trials.parquet", "trials.csv", "sweep_params.png", "sweep_progress.png", "best_config.json",
           "summary.json", "tune_config.json", "bundle/manifest.json")


def test_sweep_end_to_end_with_a_failing_trial(ray_local, labels80, tmp_path):
    # A shallow_cnn with 2 channel widths (it needs 3) fails when its trial builds the model: a
    # legitimate config error inside a trial, which must be recorded while the sweep goes on.
    fixed = {**TINY_FIXED, "shallow_cnn": {"channels": [8, 16]}}
    seed = 2
    premise = RandomSearch("few", seed=seed, points_to_evaluate=[default_point(SPACES["few"])])
    archs = [premise.suggest(str(i))["arch"] for i in range(4)]
    assert archs[0] == "siamese" and "shallow_cnn" in archs and "siamese" in archs[1:], archs
    tcfg = TuneConfig(samples=4, epochs=2, folds=2, search="random", seed=seed, fixed=fixed, max_concurrent=2)
    s = run_sweep(labels80, tmp_path / "out", tcfg, log=None)
    out = tmp_path / "out"
    for name in OUTPUTS:
        assert (out / name).is_file(), name
    for png in ("sweep_params.png", "sweep_progress.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"

    df = pd.read_parquet(out / "trials.parquet")
    assert len(df) == 4 and df["trial"].tolist() == [0, 1, 2, 3]
    assert df["arch"].tolist() == archs
    assert pd.read_csv(out / "trials.csv")["trial_id"].tolist() == df["trial_id"].tolist()
    failed = df[df["status"] == "failed"]
    assert len(failed) == archs.count("shallow_cnn") and (failed["arch"] == "shallow_cnn").all()
    assert failed["error"].str.contains("channels").all() and failed["cv_auc"].isna().all()
    ok = df[df["status"] != "failed"]
    assert set(ok["status"]) <= {"completed", "stopped"} and ok["cv_auc"].between(0, 1).all()
    assert (ok["stopped_early"] == (ok["status"] == "stopped")).all()
    assert (ok.loc[ok["status"] == "completed", "epochs_run"] == 2).all()
    assert df.loc[0, "siamese.embedding_dim"] == 64  # trial 0 = the regime's default configuration
    assert df.loc[0, "status"] == "completed"  # the baseline is never stopped early
    assert df.loc[ok.index, "shallow_cnn.dropout"].isna().all()  # siamese rows: no CNN parameters

    assert s["trials"]["failed"] == len(failed) and s["trials"]["total"] == 4 and s["regime"] == "few"
    best = s["best"]
    assert best["value"] == pytest.approx(ok.loc[ok["status"] == "completed", "cv_auc"].max())
    cfg = TrainConfig.from_dict(json.loads((out / "best_config.json").read_text()))
    assert cfg.arch == "siamese" and cfg.epochs == 2 and cfg.model_kwargs == {"channels": [8, 16, 32]}

    # ASHA stopped on the inner-validation figure, reported beside the held-out one in every row
    assert ok["inner_val_auc"].between(0, 1).all() and s["stop_metric"] == "inner_val_auc"

    # Bright signals (SNR 30-100): physics is near perfect, so the winner (a 2-epoch siamese) cannot prove
    # a paired gain over it on its out-of-fold crops, and the bundle is dedoppler, as `cropray train` ships.
    ls = read_labeled(labels80)
    g = s["bundle"]["gain_vs_physics"]
    assert not g["proven"] and g["lo"] <= g["gain"] <= g["hi"] and g["lo"] <= 0
    assert s["bundle"]["arch"] == "dedoppler" and "not proven" in s["bundle"]["physics"]
    assert f"{g['gain']:+.4f} [{g['lo']:+.4f}, {g['hi']:+.4f}]" in s["bundle"]["physics"]
    b = load_bundle(out / "bundle")
    sw = b.manifest["extra"]["sweep"]
    assert sw["best_trial"] == best["trial_id"] and sw["best_value"] == pytest.approx(best["value"])
    assert sw["shipped"] == "dedoppler" and sw["winner_gain_vs_physics"] == g
    assert b.arch == "dedoppler" and s["bundle"]["model_id"] == b.model_id and s["bundle"]["final_epochs"] == 0
    from cropray.evaluate.metrics import calibrate_threshold
    from cropray.tune.physics import baseline_scores

    phys = baseline_scores(ls.x)
    assert b.threshold == pytest.approx(calibrate_threshold(ls.y, phys))  # Youden on its scores, as train
    assert b.manifest["train_summary"]["threshold"]["rule"] == "youden"
    with torch.inference_mode():
        scores = b.model(torch.from_numpy(ls.x[:16])).numpy()
    assert scores.shape == (16,) and np.isfinite(scores).all()
    from cropray.cli.tune import human
    from cropray.tune.results import TuneResult

    assert "SHIPS      dedoppler, not the best trial" in human(s) and isinstance(s, TuneResult)


def _finished_records(out) -> dict[int, dict]:
    """{trial number: its record} of the trials cropray's records (OUT/trials/) say are finished."""
    recs = {}
    for p in sorted((out / "trials").glob("trial-*.json")):
        try:
            r = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if r["status"] in ("completed", "stopped", "failed"):
            recs[r["trial"]] = r
    return recs


def test_interrupted_sweep_resumes_without_redoing_finished_trials(ray_local, labels80, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "cropray", "tune", str(labels80), "--out", str(out), "--samples", "3",
           "--epochs", "2", "--folds", "2", "--max-concurrent", "1", "--seed", "1",
           "--fixed", json.dumps(TINY_FIXED), "--address", ray_local.get_runtime_context().gcs_address]
    # The driver SIGKILLs itself right after recording its first finished trial (the library's test
    # hook): interrupted at a known point, however fast or slow the trials run on this machine.
    env = {**os.environ, KILL_AFTER_TRIALS_ENV: "1"}
    with open(tmp_path / "driver.log", "w") as logf:
        proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT)
        try:
            proc.wait(timeout=300)  # a hang guard only
        finally:
            proc.kill()  # a no-op when the hook already killed it
            proc.wait()
    log = (tmp_path / "driver.log").read_text()
    assert proc.returncode == -signal.SIGKILL, f"the driver was not killed by the hook:\n{log[-3000:]}"
    done = _finished_records(out)
    assert len(done) == 1, f"expected exactly the first trial finished:\n{log[-3000:]}"

    s = run_sweep(labels80, out, None, resume=True, log=None)
    assert s["resumed"] and s["trials"]["total"] == 3 and s["trials"]["failed"] == 0
    assert s["trials"]["completed"] + s["trials"]["stopped"] == 3
    after = _finished_records(out)
    assert sorted(after) == [0, 1, 2]
    for n, before in done.items():  # finished trials were kept from their records, not run again
        assert after[n] == before
    assert all(after[n]["experiment"] == "sweep-resume-1" for n in set(after) - set(done))
    table = pd.read_parquet(out / "trials.parquet")
    assert table["trial"].tolist() == [0, 1, 2] and table["trial_id"].is_unique
    assert load_bundle(out / "bundle").manifest["extra"]["sweep"]["trials"]["total"] == 3


def test_a_diverged_refit_is_flagged(tmp_path):
    from cropray.bundle import save_bundle
    from cropray.models import build_model
    from cropray.tune.sweep import _check_bundle

    x = np.random.default_rng(0).random((8, 1, 64, 64), dtype=np.float32)
    m = build_model("shallow_cnn", channels=[4, 4, 4]).eval()
    ok = save_bundle(m, tmp_path / "ok", threshold=0.5, train_summary={"input_shape": [64, 64]}, metrics={})
    assert _check_bundle(str(ok), x) is None
    with torch.no_grad():
        m.head.weight.fill_(float("nan"))  # what a diverged refit leaves
    bad = save_bundle(m, tmp_path / "bad", threshold=0.5, train_summary={"input_shape": [64, 64]}, metrics={})
    assert "non-finite" in _check_bundle(str(bad), x)
