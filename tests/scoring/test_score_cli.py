"""`cropray score` and jobs/score_archive.py bad usage: exit 2 with a message naming the culprit (no Ray)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_good

from cropray.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def good(tmp_path):
    write_good(tmp_path / "in", 8, files=1)
    return tmp_path / "in"


def err_of(capsys, *args):
    rc = main(["score", *map(str, args)])
    return rc, capsys.readouterr().err


def test_missing_archive_bundle_and_file_output(tmp_path, good, bundle_dir, capsys):
    rc, err = err_of(capsys, bundle_dir(), tmp_path / "nope", tmp_path / "out")
    assert rc == 2 and "nope" in err and "does not exist" in err
    rc, err = err_of(capsys, tmp_path / "nobundle", good, tmp_path / "out")
    assert rc == 2 and "nobundle" in err
    (tmp_path / "f.txt").write_text("x")
    rc, err = err_of(capsys, bundle_dir(), good, tmp_path / "f.txt")
    assert rc == 2 and "f.txt is a file" in err
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    rc, err = err_of(capsys, bundle_dir(), good, tmp_path / "mine", "--overwrite")
    assert rc == 2 and "not a cropray score output" in err and (tmp_path / "mine" / "notes.txt").exists()


def test_tampered_bundle(tmp_path, good, bundle_dir, capsys):
    import shutil

    b = tmp_path / "b"
    shutil.copytree(bundle_dir(), b)
    w = b / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 1
    w.write_bytes(bytes(data))
    rc, err = err_of(capsys, b, good, tmp_path / "out")
    assert rc == 2 and "sha256 mismatch" in err and not (tmp_path / "out").exists()


def test_bad_flags_and_unreachable_address(tmp_path, good, bundle_dir, capsys):
    for flag, value, words in [("--actors", "0", "--actors"), ("--actors", "3,1", "MIN,MAX"),
                               ("--keep", "nosuch", "nosuch"), ("--cpus-per-actor", "-1", "--cpus-per-actor"),
                               ("--address", "127.0.0.1:1", "127.0.0.1:1")]:
        rc, err = err_of(capsys, bundle_dir(), good, tmp_path / "out", flag, value)
        assert rc == 2 and words in err, (flag, value, err)


def test_help_has_example_and_job_script_takes_same_arguments(tmp_path, good, bundle_dir):
    h = subprocess.run([sys.executable, "-m", "cropray", "score", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert h.returncode == 0 and "example:" in h.stdout and "--actors" in h.stdout
    j = subprocess.run([sys.executable, str(ROOT / "jobs" / "score_archive.py"), str(bundle_dir()), str(good),
                        str(tmp_path / "out"), "--address", "127.0.0.1:1"], capture_output=True, text=True)
    assert j.returncode == 2 and "127.0.0.1:1" in j.stderr
    assert len((ROOT / "jobs" / "score_archive.py").read_text().splitlines()) < 50


def test_output_inside_the_input_directory_is_not_read_as_input(tmp_path):
    from cropray.scoring import ScoreConfig
    from cropray.scoring.pipeline import _inputs

    write_good(tmp_path / "in", 4, files=1)
    write_good(tmp_path / "in" / "scores", 4, files=1)  # as if an earlier run's output
    files = _inputs(ScoreConfig(bundle="b", input=str(tmp_path / "in"), output=str(tmp_path / "in" / "scores")))
    assert [p.rsplit("/", 1)[-1] for p in files.paths] == ["part-00000.parquet"] and "scores" not in files.paths[0]
