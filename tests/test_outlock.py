"""One writer per output directory: cropray.outlock, and `train --out` / `tune --out`
refused while another process holds the directory. Real processes, real flock; no Ray, no training."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest
from _lockholder import hold_lock

from cropray.cli import main
from cropray.outlock import LOCK_NAME, OutputBusy, lock_path, output_lock


def _kill(p: subprocess.Popen) -> None:
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=30)


def test_lock_is_exclusive_across_processes_and_dies_with_its_holder(tmp_path):
    out = tmp_path / "deep" / "out"
    p = hold_lock(out)
    try:
        with pytest.raises(OutputBusy, match=rf"{out} is being written by another cropray run \(pid {p.pid} on "):
            with output_lock(out):
                pass
    finally:
        _kill(p)
    with output_lock(out) as lock:  # the kernel dropped the killed holder's lock: nothing stale
        assert lock.held
        with pytest.raises(OutputBusy):  # a second holder in the same process is refused too
            with output_lock(out):
                pass
    assert not (out / LOCK_NAME).exists() and out.is_dir()


def test_lock_removes_directories_it_created_when_left_empty(tmp_path):
    with output_lock(tmp_path / "a" / "b"):
        assert (tmp_path / "a" / "b" / LOCK_NAME).exists()
    assert not (tmp_path / "a").exists()
    assert lock_path(tmp_path / "m", beside=True) == tmp_path / ".m.lock"


def test_train_out_refused_while_held(tmp_path, capsys):
    model = tmp_path / "model"
    p = hold_lock(model, beside=True)  # a bundle is replaced by rename: its lock sits beside it
    try:
        assert main(["train", str(tmp_path / "labels"), "--out", str(model)]) == 2
        err = capsys.readouterr().err
        assert f"{model} is being written by another cropray run (pid {p.pid}" in err
    finally:
        _kill(p)


def test_tune_out_refused_while_held(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    p = hold_lock(sweep)
    try:
        for extra in ([], ["--resume"]):
            assert main(["tune", str(tmp_path / "labels"), "--out", str(sweep), *extra]) == 2
            err = capsys.readouterr().err
            assert f"{sweep} is being written by another cropray run (pid {p.pid}" in err
        info = json.loads((sweep / LOCK_NAME).read_text())
        assert info["pid"] == p.pid
    finally:
        _kill(p)
