"""`cropray tune` usage errors (exit 2 before any Ray work), --help, and the job script's wiring."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cropray.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_too_few_labels_exit_2(labels24, tmp_path, capsys):
    assert main(["tune", str(labels24), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "24" in err and ">= 25" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()  # refused before writing anything


def test_unknown_regime_and_bad_flags_exit_2(labels80, tmp_path, capsys):
    for bad in (["--regime", "lots"], ["--samples", "0"], ["--cpus-per-trial", "-1"], ["--metric", "loss"]):
        with pytest.raises(SystemExit) as e:
            main(["tune", str(labels80), "--out", str(tmp_path / "o"), *bad])
        assert e.value.code == 2
        assert bad[0] in capsys.readouterr().err


def test_out_dir_resume_and_fixed_refusals_exit_2(labels80, tmp_path, capsys):
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("x")
    cases = [
        (["--out", str(used)], "--overwrite"),
        (["--out", str(tmp_path / "none"), "--resume"], "no sweep to resume"),
        (["--out", str(tmp_path / "o"), "--fixed", '{"lr": 0.1}'], "'lr' is searched"),
        (["--out", str(tmp_path / "o"), "--fixed", "{not json"], "--fixed: not valid JSON"),
        (["--out", str(tmp_path / "o"), "--resume", "--overwrite"], "contradict"),
    ]
    for args, msg in cases:
        assert main(["tune", str(labels80), *args]) == 2, args
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err, (args, err)
    assert (used / "notes.txt").exists()


def test_help_has_an_example_and_the_spaces(capsys):
    with pytest.raises(SystemExit) as e:
        main(["tune", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "example:" in out and "cropray tune /tmp/labels --out /tmp/sweep --resume" in out
    assert "siamese.embedding_dim" in out and "deep_cnn.width" in out


def test_job_script_wires_the_cli():
    # Inside a Ray job (RAY_ADDRESS set) a relative --out is refused (cropray.ray_session.require_absolute).
    r = subprocess.run([sys.executable, str(ROOT / "jobs" / "tune_sweep.py"), "labels", "--out", "relative"],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "RAY_ADDRESS": "127.0.0.1:9"})
    assert r.returncode == 2 and "absolute path" in r.stderr
    assert len((ROOT / "jobs" / "tune_sweep.py").read_text().splitlines()) < 50
