"""Every validation reason triggered on purpose; file-level errors name the file."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cropray.archive import (
    crop_spec_from_schema,
    read_labeled,
    validate_decode,
    write_archive,
)
from cropray.errors import ArchiveError


def _table(n=6, side=4):
    vals = np.arange(n * side * side, dtype=np.float32).reshape(n, side * side)
    return vals


def test_every_reason():
    vals = _table()
    vals[2, 5] = np.nan
    vals[3, 0] = np.inf
    crop = pa.FixedSizeListArray.from_arrays(pa.array(vals.ravel()), 16)
    crop = pa.array([crop[i].as_py() if i != 1 else None for i in range(6)], type=crop.type)
    ids = pa.array(["a", "b", "c", "d", None, ""])
    t = pa.table({"crop_id": ids, "crop": crop})
    spec = crop_spec_from_schema(t.schema)
    check = validate_decode(t, spec)[1]
    assert list(check.reasons) == [None, "null_crop", "non_finite", "non_finite", "missing_crop_id", "missing_crop_id"]
    assert check.counts() == {"null_crop": 1, "non_finite": 2, "missing_crop_id": 2}
    x, _ = validate_decode(t, spec)
    np.testing.assert_array_equal(x.reshape(1, -1), vals[[0]])


def test_wrong_length_and_unsupported_dtype():
    t = pa.table({"crop_id": ["a", "b"], "crop": pa.array([[1.0] * 16, [1.0] * 15], type=pa.list_(pa.float32()))})
    spec = crop_spec_from_schema(t.schema, crop_shape=(4, 4))
    assert list(validate_decode(t, spec)[1].reasons) == [None, "wrong_length"]
    # A batch whose column type disagrees with the archive's (e.g. a file of strings): quarantined, not fatal.
    bad = pa.table({"crop_id": ["a"], "crop": pa.array([["x"] * 16], type=pa.list_(pa.string()))})
    assert list(validate_decode(bad, spec)[1].reasons) == ["unsupported_dtype"]


def test_missing_crop_id_column_means_every_row():
    t = pa.table({"crop": pa.FixedSizeListArray.from_arrays(pa.array(np.ones(32, np.float32)), 16)})
    check = validate_decode(t, crop_spec_from_schema(t.schema))[1]
    assert check.n_invalid == 2 and set(check.reasons) == {"missing_crop_id"}


def test_integer_crops_have_no_non_finite_check():
    t = pa.table({"crop_id": ["a"], "crop": pa.FixedSizeListArray.from_arrays(pa.array(np.full(16, 255, np.uint8)), 16)})
    assert validate_decode(t, crop_spec_from_schema(t.schema))[1].valid.all()


def test_file_errors_name_the_file(tmp_path):
    notpq = tmp_path / "notparquet.parquet"
    notpq.write_text("hello")
    with pytest.raises(ArchiveError, match="notparquet.parquet: not a readable Parquet"):
        read_labeled(str(notpq))
    nocrop = tmp_path / "nocrop.parquet"
    pq.write_table(pa.table({"x": [1]}), nocrop)
    with pytest.raises(ArchiveError, match="nocrop.parquet: no 'crop' column"):
        read_labeled(str(nocrop))
    badshape = tmp_path / "shape.parquet"
    pq.write_table(pa.table({"crop": pa.FixedSizeListArray.from_arrays(pa.array(np.ones(10, np.float32)), 10)}), badshape)
    with pytest.raises(ArchiveError, match="shape.parquet: crops have 10 values"):
        read_labeled(str(badshape))
    baddtype = tmp_path / "dtype.parquet"
    pq.write_table(pa.table({"crop": pa.FixedSizeListArray.from_arrays(pa.array(np.ones(16, np.int32)), 16)}), baddtype)
    with pytest.raises(ArchiveError, match="dtype.parquet: crop values of type int32 are not supported"):
        read_labeled(str(baddtype))


def test_labels_checked_and_duplicates_counted(tmp_path):
    crops = np.ones((4, 4, 4), np.float32)
    write_archive(tmp_path / "ok", {"crop_id": ["a", "b", "a", "c"], "label": [0, 1, 1, 0]}, crops)
    ls = read_labeled(tmp_path / "ok")
    assert ls.duplicates == 1 and ls.class_counts() == {0: 2, 1: 2}
    write_archive(tmp_path / "bad", {"crop_id": ["a", "b", "c", "d"], "label": [0, 1, 2, 0]}, crops)
    with pytest.raises(ArchiveError, match=r"row 2: label 2 is not 0 or 1"):
        read_labeled(tmp_path / "bad")
    write_archive(tmp_path / "nolabel", {"crop_id": ["a", "b", "c", "d"]}, crops)
    with pytest.raises(ArchiveError, match="no 'label' column"):
        read_labeled(tmp_path / "nolabel")


def test_snr_stays_aligned_when_only_some_files_have_it(tmp_path):
    """A folder of synth output (with `snr`) next to hand labels (without): NaN for the unknown rows."""
    d = tmp_path / "mixed"
    d.mkdir()
    write_archive(d / "a.parquet", {"crop_id": ["a", "b", "c"], "label": [1, 0, 1], "snr": [8.0, None, 20.0]},
                  np.ones((3, 4, 4), np.float32))
    write_archive(d / "b.parquet", {"crop_id": ["d", "e"], "label": [0, 1]}, np.ones((2, 4, 4), np.float32))
    ls = read_labeled(d)
    assert ls.x.shape[0] == len(ls.snr) == 5
    by_id = dict(zip(ls.crop_id.tolist(), ls.snr.tolist()))
    assert by_id["a"] == 8.0 and by_id["c"] == 20.0
    assert all(np.isnan(by_id[k]) for k in ("b", "d", "e"))
    write_archive(tmp_path / "none.parquet", {"crop_id": ["x", "y"], "label": [0, 1]}, np.ones((2, 4, 4), np.float32))
    assert read_labeled(tmp_path / "none.parquet").snr is None
