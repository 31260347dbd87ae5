"""The in-process runner (scoring/local.py): the same output as Ray Data's, the same commits and resume,
no Ray started; and `--runner auto`'s rule."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import write_bad_archive, write_good

from cropray.errors import ConfigError
from cropray.scoring import ScoreConfig, score_archive
from cropray.scoring.config import LOCAL_MAX_ROWS, choose_runner, gpu_visible
from cropray.scoring.local import Prefetch
from cropray.scoring.manifest import Manifest


def _both(tmp_path, bundle, src, **kw):
    """(local result, ray result, local frame, ray frame) of the same job under both runners."""
    out = {}
    for runner in ("local", "ray"):
        extra = dict(actors=(1, 1), cpus_per_actor=0.5) if runner == "ray" else {}
        out[runner] = score_archive(ScoreConfig(bundle=str(bundle), input=str(src), output=str(tmp_path / runner),
                                                runner=runner, keep=("obs",), **extra, **kw))
    frames = {r: pd.read_parquet(tmp_path / r).sort_values("crop_id").reset_index(drop=True) for r in out}
    return out["local"], out["ray"], frames["local"], frames["ray"]


@pytest.mark.parametrize("arch", ["shallow_cnn", "dedoppler"])
def test_local_scores_equal_ray_scores(ray_local, tmp_path, bundle_dir, arch):
    write_good(tmp_path / "in", 96, files=3)
    lo, ray, a, b = _both(tmp_path, bundle_dir(arch), tmp_path / "in")
    assert lo.runner == "local" and ray.runner == "ray"
    assert lo.rows_scored == ray.rows_scored == 96 and lo.reconciled and lo.state == "complete"
    assert list(a.columns) == list(b.columns) and (a["crop_id"] == b["crop_id"]).all()
    np.testing.assert_allclose(a["score"], b["score"], rtol=0, atol=1e-5)  # same runtime and bundle; thread counts differ
    assert (a["is_signal"] == b["is_signal"]).all() and (a["obs"] == b["obs"]).all()
    # one worker: this process, with every CPU it may use
    assert [w.worker.rsplit(":", 1)[1] for w in lo.actors] == [str(os.getpid())]
    assert lo.pool == {"runner": "local", "threads": len(os.sched_getaffinity(0)), "device": "cpu"}


def test_local_quarantines_and_fails_files_as_ray_does(ray_local, tmp_path, bundle_dir):
    expect = write_bad_archive(tmp_path / "bad")
    lo, ray, a, b = _both(tmp_path, bundle_dir("dedoppler"), tmp_path / "bad")
    for s in (lo, ray):
        assert s.rows_read == expect["read"] and s.rows_quarantined == expect["quarantined"]
        assert s.reasons == expect["reasons"] and s.reconciled
        assert sorted(f.file.rsplit("/", 1)[-1] for f in s.failed) == expect["failed"]
    qa = pd.read_parquet(tmp_path / "local" / "_quarantine").sort_values(["source_file", "row"])
    qb = pd.read_parquet(tmp_path / "ray" / "_quarantine").sort_values(["source_file", "row"])
    assert qa[["row", "reason"]].values.tolist() == qb[["row", "reason"]].values.tolist()
    assert (a["crop_id"] == b["crop_id"]).all()


def test_local_run_killed_after_a_commit_resumes_exactly_once(tmp_path, bundle_dir):
    """A driver SIGKILLed right after its first unit commit (the test hook in scoring/commit.py); the
    rerun scores only the rest, and every crop is there once."""
    write_good(tmp_path / "in", 90, files=3)
    cmd = [sys.executable, "-m", "cropray", "score", str(bundle_dir("dedoppler")), str(tmp_path / "in"),
           str(tmp_path / "out"), "--runner", "local", "--json"]
    env = {**os.environ, "CROPRAY_TEST_KILL_AFTER_COMMITS": "1"}
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == -9, p.stderr[-2000:]
    assert len(Manifest.load(tmp_path / "out").done_keys()) == 1
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    s = json.loads(p.stdout)
    assert s["resumed"] and s["units_already_done"] == 1 and s["rows_this_run"] == 60 and s["runner"] == "local"
    df = pd.read_parquet(tmp_path / "out")
    assert len(df) == 90 and df["crop_id"].is_unique


def test_local_cli_starts_no_ray(tmp_path, bundle_dir):
    """`--runner auto` on a small archive with no cluster named: in-process, Ray never imported."""
    write_good(tmp_path / "in", 40, files=1)
    code = ("import sys, json; from cropray.cli import main; rc = main(sys.argv[1:]); "
            "print(json.dumps({'rc': rc, 'ray': 'ray' in sys.modules}), file=sys.stderr)")
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "CUDA_VISIBLE_DEVICES": ""}
    p = subprocess.run([sys.executable, "-c", code, "score", str(bundle_dir("dedoppler")), str(tmp_path / "in"),
                        str(tmp_path / "out"), "--json"], env=env, capture_output=True, text=True, timeout=300)
    tail = json.loads(p.stderr.strip().splitlines()[-1])
    assert tail == {"rc": 0, "ray": False}, p.stderr[-2000:]
    s = json.loads(p.stdout)
    assert s["runner"] == "local" and "no cluster named" in s["runner_reason"] and s["rows_scored"] == 40


def _cfg(**kw):
    return ScoreConfig(bundle="b", input="i", output="o", **kw)


def test_auto_runner_rule():
    if gpu_visible(os.environ):
        assert choose_runner(_cfg(), 10, environ={})[0] == "ray"
        assert choose_runner(_cfg(), 10, environ={"CUDA_VISIBLE_DEVICES": ""})[0] == "local"
        return
    assert choose_runner(_cfg(), 2_000, environ={})[0] == "local"
    assert choose_runner(_cfg(), LOCAL_MAX_ROWS, environ={})[0] == "local"
    assert choose_runner(_cfg(), LOCAL_MAX_ROWS + 1, environ={})[0] == "ray"
    for kw, flag in ((dict(address="auto"), "--address"), (dict(actors="2"), "--actors"),
                     (dict(cpus_per_actor=1.0), "--cpus-per-actor"), (dict(num_gpus=1.0), "--num-gpus")):
        runner, why = choose_runner(_cfg(**kw), 10, environ={})
        assert runner == "ray" and why.startswith(flag)
    assert choose_runner(_cfg(), 10, environ={"RAY_ADDRESS": "127.0.0.1:6379"}) == (
        "ray", "RAY_ADDRESS names a Ray cluster or actor pool")
    assert choose_runner(_cfg(runner="local"), 10**9, environ={})[0] == "local"
    assert choose_runner(_cfg(runner="ray"), 10, environ={})[0] == "ray"


@pytest.mark.parametrize("kw,flag", [(dict(address="auto"), "--address"), (dict(actors="2"), "--actors"),
                                     (dict(num_gpus=1.0), "--num-gpus")])
def test_local_runner_refuses_ray_flags(kw, flag):
    with pytest.raises(ConfigError, match=f"--runner local .*{flag}"):
        _cfg(runner="local", **kw)
    with pytest.raises(ConfigError, match="runner"):
        _cfg(runner="threads")


def test_prefetch_keeps_order_raises_and_stops():
    assert list(Prefetch(iter(range(50)), depth=3)) == list(range(50))

    def broken():
        yield 1
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for v in Prefetch(broken()):
            got.append(v)
    assert got == [1]
    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    p = Prefetch(endless(), depth=2)
    next(iter(p))
    p.close()
    assert not p._thread.is_alive() and len(produced) <= 5  # stopped, at most depth ahead (+ in hand)
