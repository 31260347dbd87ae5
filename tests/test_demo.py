"""`cropray demo` end to end on a tiny configuration, on the shared local Ray."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cropray.cli import main
from cropray.demo import DemoConfig
from cropray.errors import ConfigError

pytestmark = pytest.mark.slow


def test_demo_end_to_end_writes_report(ray_local, tmp_path, capsys):
    wd = tmp_path / "demo"
    rc = main(["demo", "--workdir", str(wd), "--quick", "--labels", "60", "--eval-n", "200",
               "--archive-n", "1500", "--archive-files", "3", "--samples", "2", "--epochs", "1", "--target-fpr", "0.05",
               "--json"])
    assert rc == 0
    s = json.loads(capsys.readouterr().out)
    html = (wd / "report.html").read_text()
    # Self-contained: every plot inlined; the sections a reader looks for are there.
    assert html.count("data:image/png;base64,") >= 6
    for heading in ("Headline", "With and without the archive", "Model on fresh labelled crops", "Sweep (Ray Tune)",
                    "Archive scoring", "top-scoring crops"):
        assert heading in html
    c = s["comparison"]  # the archive's twin: same folds, both on the fresh crops, beside dedoppler
    for key in ("with", "without", "dedoppler"):
        for fig in ("cv_roc_auc", "roc_auc", "recall_at_1pct_fpr"):
            assert 0.0 <= c[key][fig]["value"] <= 1.0, (key, fig)
    assert c["archive"]["drawn"] == 1000 and c["archive"]["injected"] > 0
    assert c["with"]["bundle"] == str(wd / "with_archive") and c["without"]["bundle"] == str(wd / "sweep" / "bundle")
    assert s["bundle"] == c[c["chosen"]]["bundle"] and s["eval"]["model_id"] == c[c["chosen"]]["model_id"]
    assert c["with"]["model_id"] != c["without"]["model_id"]
    assert f"{c['with']['roc_auc']['value']:.3f}" in html and c["reason"] in html
    # the paired rule decided: each learned bundle's gain over dedoppler with its interval; dedoppler ships
    # unless one is proven, and the shipped threshold follows --target-fpr where the archive sets it
    assert set(c["gains"]) == {"without", "with"} and s["shipped"] == c["chosen"]
    proven = {k: g["proven"] for k, g in c["gains"].items()}
    assert (c["chosen"] == "dedoppler") == (not any(proven.values())), (c["chosen"], proven)
    if c["chosen"] == "dedoppler":
        assert s["eval"]["arch"] == "dedoppler" and "dedoppler ships" in c["reason"]
    if c["chosen"] in ("with", "dedoppler"):
        from cropray.bundle import load_bundle

        rule = load_bundle(s["bundle"]).manifest["train_summary"]["threshold"]
        assert rule["rule"] == "target_fpr" and rule["target_fpr"] == 0.05
    scores = pd.read_parquet(wd / "scores")
    assert len(scores) == 1500 and scores["crop_id"].is_unique
    assert s["score"]["rows_scored"] == 1500 and s["score"]["reconciled"]
    assert 0.0 <= s["eval"]["metrics"]["roc_auc"]["value"] <= 1.0
    assert (wd / "summary.json").is_file()


def test_demo_refuses_non_empty_workdir(tmp_path, capsys):
    (tmp_path / "x.txt").write_text("keep me")
    assert main(["demo", "--workdir", str(tmp_path), "--quick"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "x.txt").exists()


def test_demo_config_validates():
    with pytest.raises(ConfigError, match=r"'labels' = 10 is out of range; valid: int >= 25") as e:
        DemoConfig(labels=10)
    assert e.value.field == "labels"
    with pytest.raises(ConfigError, match="archive_files 4 is more than archive_n 3") as e:
        DemoConfig(archive_n=3, archive_files=4)
    assert e.value.field == "archive_files"


def _descendants(pid: int) -> list:
    import ray  # noqa: F401, I001  (puts Ray's vendored psutil on sys.path, so first)
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _name(proc) -> str:
    try:
        return proc.name()
    except Exception:
        return "?"


def _alive(procs) -> list:
    import psutil

    alive = []
    for c in procs:
        try:
            if c.is_running() and c.status() != psutil.STATUS_ZOMBIE:
                alive.append((c.pid, _name(c)))
        except psutil.Error:
            pass
    return alive


def test_demo_stops_on_one_ctrl_c_during_its_sweep(tmp_path):
    """One SIGINT to the demo's process group (what Ctrl-C in a terminal sends) during the sweep: exit
    130 promptly with one clean line, no traceback, no later step, no Ray process left behind. Before,
    Ray Tune took the first Ctrl-C as "stop gracefully" and the demo went on to retrain and score."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    wd, log = tmp_path / "demo", tmp_path / "stderr.txt"
    cmd = [sys.executable, "-m", "cropray", "demo", "--workdir", str(wd), "--quick", "--labels", "60",
           "--eval-n", "200", "--archive-n", "1500", "--archive-files", "3", "--samples", "4", "--epochs", "4"]
    env = {**os.environ, "RAY_AUTH_MODE": "token"}
    env.pop("RAY_ADDRESS", None)
    root = Path(__file__).resolve().parents[1]
    with open(log, "w") as errf:
        p = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=errf, text=True,
                             start_new_session=True)  # its own process group, like a terminal job
        procs = []
        try:
            deadline = time.time() + 400
            while time.time() < deadline and p.poll() is None:  # until a trial has started
                procs = _descendants(p.pid) or procs
                if list((wd / "sweep" / "sweep").glob("trial_*")):
                    break
                time.sleep(0.2)
            assert p.poll() is None, log.read_text()[-3000:]
            assert list((wd / "sweep" / "sweep").glob("trial_*")), "no trial started before the deadline"
            time.sleep(1.0)
            procs = _descendants(p.pid) or procs
            names = {_name(c) for c in procs}
            t0 = time.time()
            os.killpg(p.pid, signal.SIGINT)  # ONE Ctrl-C
            out, _ = p.communicate(timeout=90)
            took = time.time() - t0
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    err = log.read_text()
    assert p.returncode == 130, err[-3000:]
    assert took < 60, f"took {took:.0f} s to stop"
    assert "cropray demo: interrupted" in err and "Traceback" not in err, err[-3000:]
    assert "4/6 score" not in err and "3/6 archive" not in err and "retraining the best config" not in err
    assert out == ""
    assert {"raylet", "gcs_server"} <= names, names  # the embedded cluster was seen, so "none left" means something
    deadline = time.time() + 30
    while time.time() < deadline and _alive(procs):
        time.sleep(0.5)
    assert not _alive(procs), f"Ray processes left running: {_alive(procs)}"
