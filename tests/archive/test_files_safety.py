"""Archive listing against a hostile tree: a symlink loop, links to files, a name that is not UTF-8."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from cropray.archive import resolve_archive, write_archive
from cropray.cli import main
from cropray.errors import ArchiveError

BAD_NAME = b"\xff\xfe.parquet"


def _archive(d, n=6):
    write_archive(d, {"crop_id": [f"c{i}" for i in range(n)]}, np.ones((n, 4, 4), np.float32))
    return d / "part-00000.parquet"


def test_symlink_loop_and_links_to_files_are_listed_once(tmp_path, capsys):
    """Item 1: `ln -s .. L/sub/back` made pyarrow list the same file 41 times."""
    L = tmp_path / "L"
    (L / "sub").mkdir(parents=True)
    real = _archive(L)
    os.symlink("..", L / "sub" / "back")  # a loop: L/sub/back/sub/back/... is L again
    os.symlink(real.name, L / "alias.parquet")  # a second name for the same file
    (L / "sub" / "hard.parquet").hardlink_to(real)  # and a third
    files = resolve_archive(str(L))
    assert files.paths == [str(real)] and files.aliases >= 3
    assert resolve_archive(str(L / "*.parquet")).paths == [str(real)]
    assert main(["inspect", str(L), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["rows"] == 6 and s["files"] == 1 and s["duplicate_rows"] == 0


def test_link_to_a_directory_outside_is_followed_once(tmp_path):
    real = _archive(tmp_path / "elsewhere")
    (tmp_path / "L").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "L" / "a")
    os.symlink(tmp_path / "elsewhere", tmp_path / "L" / "b")
    paths = resolve_archive(str(tmp_path / "L")).paths
    assert len(paths) == 1 and os.path.samefile(paths[0], real)


def test_non_utf8_file_name_is_named_not_a_crash(tmp_path, capsys):
    """Item 8: a file named b'\\xff\\xfe.parquet' made `inspect` die with UnicodeDecodeError."""
    d = tmp_path / "in"
    good = _archive(d)
    shutil.copyfile(good, os.path.join(os.fsencode(d), BAD_NAME))
    assert main(["inspect", str(d), "--json"]) == 1  # a failed file needs attention; the good one is read
    s = json.loads(capsys.readouterr().out)
    assert s["files"] == 2 and s["files_ok"] == 1 and s["rows"] == 6
    assert s["failed"][0]["file"].endswith("\\xff\\xfe.parquet") and "not valid UTF-8" in s["failed"][0]["error"]
    assert main(["inspect", str(d)]) == 1  # the human summary prints the name too
    assert "\\xff\\xfe.parquet" in capsys.readouterr().out
    # Alone, the file is an error naming it (exit 2); other commands (train, eval) refuse it the same way.
    os.unlink(good)
    assert main(["inspect", str(d)]) == 2
    assert "\\xff\\xfe.parquet" in capsys.readouterr().err
    with pytest.raises(ArchiveError, match=r"\\xff\\xfe\.parquet: file name is not valid UTF-8"):
        resolve_archive(str(d))
