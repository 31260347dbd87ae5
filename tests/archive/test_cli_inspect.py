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


def test_labels_null_or_not_0_1_are_invalid_and_exit_1(tmp_path, capsys):
    """-1, 2 and null labels are what `cropray train` refuses: inspect counts them invalid, once per row."""
    crops = np.ones((6, 4, 4), np.float32)
    crops[5, 0, 0] = np.nan  # a bad crop with a bad label too: counted once, under its crop's reason
    label = pa.array([0, 1, -1, 2, None, 7], pa.int64())
    pq.write_table(pa.table({"crop_id": list("abcdef"), "crop": _tensor(crops), "label": label}),
                   tmp_path / "l.parquet")
    rc = main(["inspect", str(tmp_path), "--json"])
    s = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert s["invalid_rows"] == 4 and s["invalid"] == {"label_not_0_or_1": 2, "label_null": 1, "non_finite": 1}
    assert s["labels"] == {"0": 1, "1": 1, "-1": 1, "2": 1, "null": 1, "7": 1}
    assert main(["inspect", str(tmp_path)]) == 1
    assert "invalid   4 rows" in capsys.readouterr().out


def test_a_string_label_column_names_the_column(tmp_path, capsys):
    pq.write_table(pa.table({"crop_id": ["a", "b"], "crop": _tensor(np.ones((2, 4, 4), np.float32)),
                             "label": ["yes", "no"]}), tmp_path / "s.parquet")
    assert main(["inspect", str(tmp_path)]) == 2  # the only file failed: nothing readable
    err = capsys.readouterr().err
    assert "s.parquet: column 'label' has type string; expected int or bool" in err, err
    assert "invalid literal" not in err
    write_archive(tmp_path / "mixed", {"crop_id": ["c"], "label": [1]}, np.ones((1, 4, 4), np.float32))
    pq.write_table(pa.table({"crop_id": ["a"], "crop": _tensor(np.ones((1, 4, 4), np.float32)), "label": ["yes"]}),
                   tmp_path / "mixed" / "s.parquet")
    assert main(["inspect", str(tmp_path / "mixed"), "--json"]) == 1
    failed = json.loads(capsys.readouterr().out)["failed"]
    assert len(failed) == 1 and "column 'label' has type string" in failed[0]["error"]


def test_human_output_shows_aliases_skipped(tmp_path, capsys):
    d = tmp_path / "d"
    write_archive(d, {"crop_id": ["a", "b"]}, np.ones((2, 4, 4), np.float32))
    (d / "sub").mkdir()
    (d / "sub" / "again.parquet").symlink_to(next(d.glob("*.parquet")))
    assert main(["inspect", str(d)]) == 0
    out = capsys.readouterr().out
    assert "1 aliases skipped" in out, out


def _tensor(x: np.ndarray) -> pa.ExtensionArray:
    n, h, w = x.shape
    storage = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), h * w)
    return pa.ExtensionArray.from_storage(pa.fixed_shape_tensor(pa.float32(), [h, w]), storage)
