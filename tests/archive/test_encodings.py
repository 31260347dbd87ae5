"""Round trips of every accepted encoding and dtype; decode equals a row-by-row reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cropray.archive import (
    crop_spec_from_schema,
    read_labeled,
    resolve_archive,
    to_storage_dtype,
    validate_decode,
    write_archive,
)
from cropray.errors import ArchiveError

RNG = np.random.default_rng(0)


def _crops(n=12, h=64, w=64):
    # Raw power over several decades, like real crops.
    return (RNG.chisquare(2, size=(n, h, w)) * 10.0 ** RNG.uniform(-2, 4, size=(n, 1, 1))).astype(np.float32)


def _reference(values_rows, dtype, h, w):
    """Slow row-by-row decode: the reference the vectorised path must equal."""
    return np.stack([np.asarray(r, dtype=dtype).astype(np.float32).reshape(1, h, w) for r in values_rows])


@pytest.mark.parametrize("dtype", ["float32", "float16", "uint8", "uint16"])
def test_canonical_round_trip_every_dtype(tmp_path, dtype):
    crops = _crops()
    write_archive(tmp_path, {"crop_id": [f"c{i}" for i in range(12)], "label": np.arange(12) % 2}, crops, files=3, dtype=dtype)
    t = pq.read_table(tmp_path / "part-00000.parquet")
    assert t.schema.field("crop").type.extension_name == "arrow.fixed_shape_tensor"
    ls = read_labeled(tmp_path)
    assert ls.x.shape == (12, 1, 64, 64) and ls.x.dtype == np.float32
    stored = to_storage_dtype(crops, dtype)
    np.testing.assert_array_equal(ls.x[:, 0], stored.astype(np.float32))
    assert ls.spec.dtype == np.dtype(dtype)


def test_readable_without_cropray(tmp_path):
    crops = _crops(5)
    write_archive(tmp_path, {"crop_id": np.arange(5, dtype=np.int64)}, crops)
    df = pd.read_parquet(tmp_path)
    assert len(df) == 5 and list(df.columns[:2]) == ["crop_id", "crop"]
    # Readers that do not know the extension see the storage: a fixed-size list of 4096 values.
    raw = pq.read_table(tmp_path).column("crop").chunk(0).storage
    assert raw.type.list_size == 64 * 64
    np.testing.assert_array_equal(np.asarray(raw[2].as_py(), np.float32), crops[2].ravel())


@pytest.mark.parametrize("pa_type", [pa.float32(), pa.float16(), pa.uint8(), pa.uint16()])
def test_plain_fixed_size_list_inferred_and_given_shape(tmp_path, pa_type):
    np_t = pa_type.to_pandas_dtype()
    rows = [RNG.integers(0, 200, size=32 * 16).astype(np_t) for _ in range(6)]
    arr = pa.FixedSizeListArray.from_arrays(pa.array(np.concatenate(rows), type=pa_type), 32 * 16)
    t = pa.table({"crop_id": [f"r{i}" for i in range(6)], "crop": arr})
    # 512 values: not a square -> needs a shape.
    with pytest.raises(ArchiveError, match="not a square"):
        crop_spec_from_schema(t.schema, source="f.parquet")
    spec = crop_spec_from_schema(t.schema, crop_shape=(32, 16))
    x, check = validate_decode(t, spec)
    assert check.valid.all()
    np.testing.assert_array_equal(x, _reference(rows, np_t, 32, 16))


def test_square_inferred_for_fixed_size_list():
    rows = _crops(4, 16, 16).reshape(4, -1)
    t = pa.table({"crop_id": ["a", "b", "c", "d"], "crop": pa.FixedSizeListArray.from_arrays(pa.array(rows.ravel()), 256)})
    assert crop_spec_from_schema(t.schema).shape == (16, 16)


def test_sliced_batches_respect_offsets():
    crops = _crops(10, 8, 8)
    t = pa.table({"crop_id": [str(i) for i in range(10)], "crop": pa.FixedShapeTensorArray.from_numpy_ndarray(crops)})
    spec = crop_spec_from_schema(t.schema)
    x, _ = validate_decode(t.slice(3, 4), spec)  # `.values` alone would give rows 0..3
    np.testing.assert_array_equal(x[:, 0], crops[3:7])
    chunked = pa.concat_tables([t.slice(0, 5), t.slice(5, 5)])
    x2, _ = validate_decode(chunked, spec)
    np.testing.assert_array_equal(x2[:, 0], crops)


def test_variable_length_list(tmp_path):
    crops = _crops(5, 8, 8).reshape(5, -1)
    rows = [crops[0], crops[1][:60], crops[2], None, crops[4]]
    t = pa.table({"crop_id": list("abcde"), "crop": pa.array(rows, type=pa.list_(pa.float32()))})
    pq.write_table(t, tmp_path / "v.parquet")
    t2 = pq.read_table(tmp_path / "v.parquet")
    spec = crop_spec_from_schema(t2.schema, crop_shape=(8, 8))
    x, check = validate_decode(t2, spec)
    assert list(check.reasons) == [None, "wrong_length", None, "null_crop", None]
    np.testing.assert_array_equal(x.reshape(3, -1), crops[[0, 2, 4]])


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_ray_tensor_extension(tmp_path, version):
    from ray.data._internal.tensor_extensions.arrow import ArrowTensorArray as ATA
    from ray.data.context import DataContext
    from ray.data.extensions import ArrowTensorArray  # noqa: F401  (registers Ray's types)

    ctx = DataContext.get_current()
    old = ctx.use_arrow_tensor_v2
    ctx.use_arrow_tensor_v2 = version == "v2"
    try:
        crops = _crops(6, 16, 16)
        arr = ATA.from_numpy(crops)
    finally:
        ctx.use_arrow_tensor_v2 = old
    t = pa.table({"crop_id": [f"x{i}" for i in range(6)], "crop": arr})
    pq.write_table(t, tmp_path / "r.parquet")
    t2 = pq.read_table(tmp_path / "r.parquet")
    spec = crop_spec_from_schema(t2.schema)
    assert spec.shape == (16, 16) and spec.encoding == "ray_tensor"
    x, check = validate_decode(t2, spec)
    assert check.valid.all()
    np.testing.assert_array_equal(x[:, 0], crops)


def test_resolve_file_dir_glob_uri(tmp_path):
    write_archive(tmp_path / "a", {"crop_id": list("xyz")}, _crops(3, 8, 8), files=3)
    (tmp_path / "a" / "_manifest.json").write_text("{}")
    assert len(resolve_archive(str(tmp_path / "a")).paths) == 3
    assert len(resolve_archive(str(tmp_path / "a" / "part-00001.parquet")).paths) == 1
    assert len(resolve_archive(str(tmp_path / "a" / "part-0000[02].parquet")).paths) == 2
    assert len(resolve_archive(f"file://{tmp_path}/a").paths) == 3
    with pytest.raises(ArchiveError, match="does not exist"):
        resolve_archive(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArchiveError, match="no Parquet files"):
        resolve_archive(str(tmp_path / "empty"))
