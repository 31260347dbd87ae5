"""`cropray score` against a hostile-but-fair user: a symlink loop, a second writer, a
rewritten input, a read-only output, a full disk, a non-UTF-8 file name, inputs with nothing to score.

Real processes, real flock, real mounts (tmpfs and a read-only bind mount, where the test runs as
root; otherwise chmod or a skip says why), real Ray (the shared session).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _lockholder import hold_lock
from conftest import ids, write_good

from cropray.cli import main
from cropray.outlock import LOCK_NAME, output_lock

FLAGS = ("--actors", "1", "--cpus-per-actor", "0.5", "--precision", "fp32", "--batch-size", "64")
def score(capsys, bundle, inp, out, *extra):
    rc = main(["score", str(bundle), str(inp), str(out), *FLAGS, *extra, "--json"])
    cap = capsys.readouterr()
    return rc, (json.loads(cap.out) if cap.out.strip() else None), cap.err


def snapshot(d: Path) -> dict:
    """Every path under d with its mtime, size and content hash: what 'writes nothing' compares."""
    return {str(p.relative_to(d)): (p.stat().st_mtime_ns, p.stat().st_size,
                                    hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None)
            for p in sorted(d.rglob("*"))}


def _mount(*args) -> bool:
    return os.geteuid() == 0 and subprocess.run(["mount", *args], capture_output=True).returncode == 0


# -- item 1 ------------------------------------------------------------------------------------------
def test_symlink_loop_in_input_is_scored_once(ray_local, tmp_path, bundle_dir, capsys):
    L = tmp_path / "L"
    (L / "sub").mkdir(parents=True)
    write_good(L, 200, files=1)
    os.symlink("..", L / "sub" / "back")
    rc, s, err = score(capsys, bundle_dir(), L, tmp_path / "out")
    assert rc == 0, err
    assert s["files"] == 1 and s["rows_scored"] == 200 and s["duplicates"]["crop_ids"] == 0
    df = pd.read_parquet(tmp_path / "out")
    assert len(df) == 200 and set(df["crop_id"]) == set(ids("c", 200))


# -- item 2 ------------------------------------------------------------------------------------------
def test_second_writer_refused_and_killed_holder_leaves_no_stale_lock(tmp_path, bundle_dir, capsys):
    write_good(tmp_path / "in", 20, files=1)
    out = tmp_path / "out"
    holder = hold_lock(out)
    try:
        rc, s, err = score(capsys, bundle_dir(), tmp_path / "in", out)
        assert rc == 2 and s is None
        assert str(out) in err and f"pid {holder.pid}" in err and "another cropray run" in err
        assert "Traceback" not in err and not (out / "_manifest.json").exists()
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # no cleanup runs in the holder: the kernel drops its lock
        holder.wait(timeout=30)
    assert (out / LOCK_NAME).exists()  # the file stays behind, but nobody holds it
    with output_lock(out) as lock:
        assert lock.held and json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (out / LOCK_NAME).exists()  # a clean exit removes it


# -- item 3 ------------------------------------------------------------------------------------------
def test_input_rewritten_with_same_shape_is_refused_on_resume(ray_local, tmp_path, bundle_dir, capsys):
    inp, out = tmp_path / "in", tmp_path / "out"
    write_good(inp, 60, files=2)
    rc, s, err = score(capsys, bundle_dir(), inp, out)
    assert rc == 0 and s["rows_scored"] == 60, err
    m = json.loads((out / "_manifest.json").read_text())
    assert set(m["inputs"]) == {str(inp / "part-00000.parquet"), str(inp / "part-00001.parquet")}
    before = pq.ParquetFile(inp / "part-00001.parquet").metadata
    write_good(tmp_path / "new", 60, files=2, seed=7)  # same ids, rows and row groups; other crops
    shutil.copyfile(tmp_path / "new" / "part-00001.parquet", inp / "part-00001.parquet")  # one file rewritten
    after = pq.ParquetFile(inp / "part-00001.parquet").metadata
    assert (after.num_rows, after.num_row_groups) == (before.num_rows, before.num_row_groups)
    rc, s, err = score(capsys, bundle_dir(), inp, out)
    assert rc == 2 and "part-00001.parquet changed since" in err and "--overwrite" in err
    assert "Traceback" not in err


# -- item 7 ------------------------------------------------------------------------------------------
def test_noop_rerun_on_read_only_output_exits_0_and_writes_nothing(ray_local, tmp_path, bundle_dir, capsys):
    inp, out = tmp_path / "in", tmp_path / "out"
    write_good(inp, 40, files=2)
    rc, s, err = score(capsys, bundle_dir(), inp, out)
    assert rc == 0, err
    before = snapshot(out)
    bound = _mount("--bind", str(out), str(out)) and _mount("-o", "remount,ro,bind", str(out))
    if not bound:
        if os.geteuid() == 0:
            pytest.skip("root, but cannot make a read-only bind mount here (and chmod does not bind root)")
        out.chmod(0o555)
    try:
        rc, s, err = score(capsys, bundle_dir(), inp, out)
        assert rc == 0 and s["noop"] and s["rows_scored"] == 40, err
        assert "already holds every unit" in s["noop_reason"]
        rc, s, err = score(capsys, bundle_dir(), inp, out, "--overwrite")  # must write: refused, named
        assert rc == 2 and str(out) in err and "Traceback" not in err
    finally:
        if bound:
            subprocess.run(["umount", "-l", str(out)], check=True)
        else:
            out.chmod(0o755)
    assert snapshot(out) == before


def test_full_disk_exit_2_with_message_then_rerun_completes(ray_local, tmp_path, bundle_dir, capsys):
    small = tmp_path / "small"
    small.mkdir()
    if not _mount("-t", "tmpfs", "-o", "size=96k", "tmpfs", str(small)):
        pytest.skip("needs root to mount a tiny tmpfs (a real ENOSPC)")
    try:
        inp, out = tmp_path / "in", small / "out"
        n = 400
        write_good(inp, n, files=40)  # 40 units of 10 rows: 40 files and a growing manifest
        rc, s, err = score(capsys, bundle_dir(), inp, out)
        assert rc == 2 and s is None, err
        assert f"cropray score: error: cannot write to {out}: No space left on device" in err
        assert "_manifest.json is consistent" in err and "rerun the same command" in err
        m = json.loads((out / "_manifest.json").read_text())  # still whole, still valid JSON
        done = [k for k, r in m["units"].items() if r["status"] == "done"]
        assert all((out / f"{k}.parquet").exists() for k in done)
        subprocess.run(["mount", "-o", "remount,size=16m", str(small)], check=True)  # space freed
        rc, s, err = score(capsys, bundle_dir(), inp, out)
        assert rc == 0 and s["rows_scored"] == n and s["resumed"], err
        df = pd.read_parquet(out)
        assert len(df) == n and df["crop_id"].is_unique
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)  # lazy: detached even if a file is open


# -- item 8 ------------------------------------------------------------------------------------------
def test_non_utf8_file_name_fails_that_file_and_scores_the_rest(ray_local, tmp_path, bundle_dir, capsys):
    inp = tmp_path / "in"
    (good,) = write_good(inp, 30, files=1)
    shutil.copyfile(good, os.path.join(os.fsencode(inp), b"\xff\xfe.parquet"))
    rc, s, err = score(capsys, bundle_dir(), inp, tmp_path / "out")
    assert rc == 1, err  # a failed file needs attention
    assert s["rows_scored"] == 30 and s["files"] == 2 and s["files_failed"] == 1
    assert s["failed"][0]["file"].endswith("\\xff\\xfe.parquet") and "not valid UTF-8" in s["failed"][0]["error"]
    m = json.loads((tmp_path / "out" / "_manifest.json").read_text())
    assert any(f["file"].endswith("\\xff\\xfe.parquet") and f["status"] == "failed" for f in m["files"])


# -- item 12 -----------------------------------------------------------------------------------------
def test_fresh_output_with_nothing_to_score_says_why(tmp_path, bundle_dir, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("a.parquet", "b.parquet"):
        (bad / name).write_bytes(b"PAR1 not really parquet")
    assert main(["score", str(bundle_dir()), str(bad), str(tmp_path / "out1"), *FLAGS]) == 1
    head = capsys.readouterr().out.splitlines()[0]
    assert "every input file failed (2 of 2" in head and "already holds" not in head
    assert not (tmp_path / "out1").exists()  # nothing was written, not even an empty directory
    empty = tmp_path / "empty"
    empty.mkdir()
    none = pa.FixedSizeListArray.from_arrays(pa.array([], pa.float32()), 64 * 64)
    pq.write_table(pa.table({"crop_id": pa.array([], pa.string()), "crop": pa.ExtensionArray.from_storage(
        pa.fixed_shape_tensor(pa.float32(), [64, 64]), none)}), empty / "part-00000.parquet")
    assert main(["score", str(bundle_dir()), str(empty), str(tmp_path / "out2"), *FLAGS]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert "the input holds no rows" in head and "part-00000.parquet" in head and "already holds" not in head
