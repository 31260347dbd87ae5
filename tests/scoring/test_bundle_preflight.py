"""A bundle that only a load can find wrong, re-signed so its digest and hashes pass (issue: hardening).

`cropray score` must refuse it before OUTPUT exists or a pool starts: exit 2, one line naming the
file. When the driver's build is skipped (its "already built here" marker planted for the bad bundle,
as a bundle swapped under a run would be), the actors' failure is still one line and exit 2.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import struct
import sys
from pathlib import Path

import pytest
from conftest import write_good

from cropray.cli import main
from cropray.scoring import preflight

FLAGS = ("--actors", "1", "--cpus-per-actor", "0.5", "--precision", "fp32", "--batch-size", "64")


def resign(b: Path) -> None:
    """Recompute every file's sha256 and `bundle_sha256`, as someone who read bundle_manifest.py could."""
    man = json.loads((b / "manifest.json").read_text())
    for name in man["files"]:
        man["files"][name] = hashlib.sha256((b / name).read_bytes()).hexdigest()
    body = {k: v for k, v in man.items() if k not in ("created", "bundle_sha256")}
    man["bundle_sha256"] = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    (b / "manifest.json").write_text(json.dumps(man, indent=2))


def header_too_large(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    data = bytearray((dst / "model.safetensors").read_bytes())
    data[:8] = struct.pack("<Q", 2**40)
    (dst / "model.safetensors").write_bytes(bytes(data))
    resign(dst)
    return dst


def hparams_misfit(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    man = json.loads((dst / "manifest.json").read_text())
    man["hparams"]["channels"] = [c * 2 for c in man["hparams"]["channels"]]  # the weights stay as they were
    (dst / "manifest.json").write_text(json.dumps(man))
    resign(dst)
    return dst


def score(capsys, bundle, inp, out):
    rc = main(["score", str(bundle), str(inp), str(out), *FLAGS])
    return rc, capsys.readouterr().err


def one_line(err: str) -> str:
    """The one error line of stderr (progress lines `cropray score: <message>` and Ray's own time-stamped
    log lines, printed on every run, aside)."""
    lines = [ln for ln in err.splitlines() if ln.strip() and not re.match(r"\[?\d{4}-\d\d-\d\d ", ln)
             and (not ln.startswith("cropray score: ") or ln.startswith("cropray score: error:"))]
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("cropray score: error:"), err
    return lines[0]


@pytest.fixture
def archive(tmp_path):
    write_good(tmp_path / "in", 64, files=1)
    return tmp_path / "in"


@pytest.mark.parametrize("tamper, needle", [(header_too_large, "header too large"),
                                            (hparams_misfit, "do not fit")])
def test_a_resigned_bundle_that_does_not_load_is_refused_before_output_exists(
        tmp_path, bundle_dir, archive, capsys, tamper, needle):
    assert "channels" in json.loads((bundle_dir() / "manifest.json").read_text())["hparams"]
    bad = tamper(bundle_dir(), tmp_path / "bad")
    rc, err = score(capsys, bad, archive, tmp_path / "out")
    line = one_line(err)
    assert rc == 2 and str(bad / "model.safetensors") in line and needle in line, err
    assert not (tmp_path / "out").exists()  # refused before OUTPUT (and the pool) exist


def test_a_good_bundle_is_built_once_per_machine(tmp_path, bundle_dir):
    """The driver's torch build runs once per bundle: the marker it leaves skips it next time."""
    b = bundle_dir()
    man = json.loads((b / "manifest.json").read_text())
    marker = preflight._marker(man["bundle_sha256"])
    assert not marker.exists()
    assert preflight.check_bundle(b).bundle_sha256 == man["bundle_sha256"]
    assert marker.exists()
    bad = hparams_misfit(b, tmp_path / "bad")
    with pytest.raises(Exception, match="do not fit"):
        preflight.check_bundle(bad)
    assert not preflight._marker(json.loads((bad / "manifest.json").read_text())["bundle_sha256"]).exists()


def test_an_actor_that_cannot_load_the_bundle_is_one_line_exit_2(ray_local, tmp_path, bundle_dir, archive, capsys,
                                                                  monkeypatch):
    # Logging handlers made in an earlier test (cli.main's basicConfig, Ray Data's console handler)
    # hold that test's captured stderr, closed since: point them at this test's.
    for lg in [logging.root, *logging.Logger.manager.loggerDict.values()]:
        for h in getattr(lg, "handlers", []):
            if isinstance(h, logging.StreamHandler) and getattr(h.stream, "closed", False):
                monkeypatch.setattr(h, "stream", sys.stderr)
    bad = hparams_misfit(bundle_dir(), tmp_path / "bad")
    marker = preflight._marker(json.loads((bad / "manifest.json").read_text())["bundle_sha256"])
    preflight._write_marker(marker)  # the driver believes it built this bundle: only the actors find out
    rc, err = score(capsys, bad, archive, tmp_path / "out")
    line = one_line(err)
    assert rc == 2 and str(bad / "model.safetensors") in line and "do not fit" in line, err
