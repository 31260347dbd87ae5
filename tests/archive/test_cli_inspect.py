"""`cropray inspect` end to end, and CLI usage errors exiting 2 with a message."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cropray.archive import write_archive
from cropray.cli import main


def test_inspect_counts_labels_invalid_and_duplicates(tmp_path, capsys):
    crops = np.random.default_rng(1).random((6, 8, 8)).astype(np.float32)
    crops[1, 0, 0] = np.nan
    write_archive(tmp_path, {"crop_id": ["a", "b", "c", "a", "e", "f"], "label": [0, 1, 1, 0, 1, 0]}, crops, files=2)
    rc = main(["inspect", str(tmp_path), "--json"])
    s = json.loads(capsys.readouterr().out)
    assert rc == 1  # an invalid row and a duplicate id need attention
    assert s["rows"] == 6 and s["files"] == 2 and s["invalid"] == {"non_finite": 1}
    assert s["duplicate_rows"] == 1 and s["labels"] == {"0": 3, "1": 3}
    assert s["crop"] == ["8x8 float32 (fixed_shape_tensor)"]


def test_inspect_clean_archive_exit_0_and_human_summary(tmp_path, capsys):
    write_archive(tmp_path, {"crop_id": ["a", "b"]}, np.ones((2, 4, 4), np.float32))
    assert main(["inspect", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "rows      2" in out and "invalid   0 rows" in out


def test_corrupt_file_among_good_ones_is_listed(tmp_path, capsys):
    write_archive(tmp_path, {"crop_id": ["a", "b"]}, np.ones((2, 4, 4), np.float32))
    (tmp_path / "zz-corrupt.parquet").write_bytes(b"PAR1 not really")
    assert main(["inspect", str(tmp_path), "--json"]) == 1
    s = json.loads(capsys.readouterr().out)
    assert s["failed"][0]["file"].endswith("zz-corrupt.parquet")


def test_usage_errors_exit_2_with_message(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope")]) == 2
    assert "archive path does not exist" in capsys.readouterr().err
    (tmp_path / "x.parquet").write_text("not parquet")
    assert main(["inspect", str(tmp_path / "x.parquet")]) == 2
    assert "x.parquet: not a readable Parquet file" in capsys.readouterr().err
    pq.write_table(pa.table({"a": [1]}), tmp_path / "nocrop.parquet")
    assert main(["inspect", str(tmp_path / "nocrop.parquet")]) == 2
    assert "no 'crop' column" in capsys.readouterr().err
    pq.write_table(pa.table({"crop": pa.FixedSizeListArray.from_arrays(pa.array(np.ones(20, np.float32)), 10)}), tmp_path / "s.parquet")
    assert main(["inspect", str(tmp_path / "s.parquet")]) == 2
    assert "not a square" in capsys.readouterr().err


def test_bad_flag_exits_2(capsys):
    import pytest

    with pytest.raises(SystemExit) as e:
        main(["inspect", "x", "--crop-shape", "abc"])
    assert e.value.code == 2
    assert "--crop-shape" in capsys.readouterr().err
