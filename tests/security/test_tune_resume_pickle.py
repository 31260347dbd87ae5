"""`cropray tune --resume` never unpickles what a user can plant in --out, and a
damaged or foreign sweep state is refused with a message, exit 2 (item 10).

One real sweep is interrupted (its driver SIGKILLed right after a trial finished, as a crash would);
each test works on a copy of that directory.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cropray.cli import main

# Narrow real architectures, one pass over the training split per epoch (as tests/tune/conftest.py).
TINY_FIXED = {"siamese": {"channels": [8, 16, 32]}, "shallow_cnn": {"channels": [8, 16, 32]},
              "deep_cnn": {"width": 8}, "epoch_crops": 32}
FINISHED = ("completed", "stopped", "failed")


class _Planted:
    """Unpickling this runs a shell command: what a hostile tuner.pkl does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _labels(tmp_path_factory, name: str, seed: int) -> Path:
    from cropray.synth import synth_archive

    out = tmp_path_factory.mktemp(name)
    synth_archive(out, 40, labeled=True, seed=seed, snr_range=(30.0, 100.0))
    return out


@pytest.fixture(scope="module")
def labels(tmp_path_factory):
    return _labels(tmp_path_factory, "labels40", 5)


def _records(out: Path) -> dict[int, dict]:
    recs = {}
    for p in sorted((out / "trials").glob("trial-*.json")):
        try:
            r = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        recs[r["trial"]] = r
    return recs


def _cmd(labels, out, ray_local, *extra) -> list[str]:
    return [sys.executable, "-m", "cropray", "tune", str(labels), "--out", str(out), *extra,
            "--address", ray_local.get_runtime_context().gcs_address]


def _finished_in_tune(out: Path) -> int:
    """Trials whose last report (Tune's own result.json, JSON lines) says finished."""
    n = 0
    for p in (out / "sweep").glob("trial_*/result.json"):
        lines = [ln for ln in p.read_text(errors="replace").splitlines() if ln.strip()]
        try:
            n += bool(lines) and json.loads(lines[-1]).get("finished") is True
        except json.JSONDecodeError:  # a line being written
            pass
    return n


@pytest.fixture(scope="module")
def interrupted(ray_local, labels, tmp_path_factory) -> Path:
    """OUT of a 2-trial sweep whose driver SIGKILLed itself right after recording trial 0 as finished
    (the CROPRAY_TEST_KILL_AFTER_TRIALS hook in cropray/tune/sweep.py): a crash at a known point."""
    out = tmp_path_factory.mktemp("sweep") / "out"
    cmd = _cmd(labels, out, ray_local, "--samples", "2", "--epochs", "1", "--folds", "2", "--max-concurrent", "1",
               "--search", "random", "--fixed", json.dumps(TINY_FIXED))
    log = out.parent / "driver.log"
    with open(log, "w") as logf:
        r = subprocess.run(cmd, stdout=logf, stderr=subprocess.STDOUT, timeout=300,
                           env={**os.environ, "CROPRAY_TEST_KILL_AFTER_TRIALS": "1"})
    if (out / "trials").exists():  # cropray's records: exactly one trial finished, one to rerun
        finished = [rec for rec in _records(out).values() if rec["status"] in FINISHED]
        assert r.returncode == -9 and len(finished) == 1, log.read_text()[-3000:]
    else:  # a cropray without records (nor the hook) runs to the end: still a sweep to resume
        assert _finished_in_tune(out) >= 1, f"no trial finished (rc {r.returncode}):\n{log.read_text()[-3000:]}"
    return out


@pytest.fixture
def sweep(interrupted, tmp_path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(interrupted, out, symlinks=True)
    (out / "_lock").unlink(missing_ok=True)
    return out


def test_planted_pickles_are_never_loaded_on_resume(sweep, labels, ray_local, tmp_path):
    marker = tmp_path / "MARKER"
    payload = pickle.dumps(_Planted(marker))
    exp = sweep / "sweep"
    targets = [exp / "tuner.pkl", *exp.glob("searcher-state-*.pkl"), *exp.glob("trial_*/params.pkl")]
    if not list(exp.glob("searcher-state-*.pkl")):
        targets.append(exp / "searcher-state-2026-01-01_00-00-00.pkl")
    for t in targets:
        t.write_bytes(payload)
    pickle.loads(payload)  # the premise: this payload does create the marker when unpickled
    assert marker.exists()
    marker.unlink()

    before = _records(sweep)
    r = subprocess.run(_cmd(labels, sweep, ray_local, "--resume", "--json"), capture_output=True, text=True,
                       timeout=600)
    assert not marker.exists(), "resume unpickled a planted file"
    assert r.returncode == 0, r.stderr[-3000:]
    kept = next(n for n, rec in before.items() if rec["status"] in FINISHED)
    s = json.loads(r.stdout)
    assert s["resumed"] and s["trials"]["total"] == 2 and s["trials"]["completed"] + s["trials"]["stopped"] == 2
    after = _records(sweep)
    assert after[kept] == before[kept]  # the finished trial was kept from cropray's record, not rerun
    assert all(rec["status"] in FINISHED for rec in after.values())
    assert (sweep / "sweep-resume-1").is_dir() and (sweep / "bundle" / "manifest.json").is_file()


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])


def _garbage(p: Path) -> None:
    p.write_bytes(os.urandom(200))


def _first_record(out: Path) -> Path:
    return sorted((out / "trials").glob("trial-*.json"))[0]


def _foreign_config(out: Path) -> None:
    p = _first_record(out)
    rec = json.loads(p.read_text())
    rec["config"] = {"arch": "deep_cnn", "deep_cnn.dropout": 0.3}  # not a point of the 'few' space
    p.write_text(json.dumps(rec))


@pytest.mark.parametrize("damage,where,needle", [
    (lambda o: _truncate(o / "tune_config.json"), "tune_config.json", "damaged sweep config"),
    (lambda o: _garbage(o / "data.json"), "data.json", "not valid JSON"),
    (lambda o: (o / "data.json").write_text("[1, 2, 3]"), "data.json", "not a cropray sweep data record"),
    (lambda o: (o / "tune_config.json").write_text('{"samples": "many"}'), "tune_config.json", "samples"),
    (lambda o: _garbage(_first_record(o)), "trial-0000.json", "not valid JSON"),
    (_foreign_config, "trial-0000.json", "not a point of the 'few' space"),
    (lambda o: shutil.rmtree(o / "trials"), "trials/", "never does"),
])
def test_a_damaged_or_foreign_sweep_state_exits_2(sweep, labels, capsys, damage, where, needle):
    damage(sweep)
    assert main(["tune", str(labels), "--out", str(sweep), "--resume"]) == 2
    err = capsys.readouterr().err
    assert where in err and needle in err and "Traceback" not in err, err


def test_resume_with_another_labelled_set_exits_2(sweep, tmp_path_factory, capsys):
    other = _labels(tmp_path_factory, "other40", 9)
    assert main(["tune", str(other), "--out", str(sweep), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "not the labelled set this sweep started on" in err and "Traceback" not in err
