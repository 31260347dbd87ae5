"""ScoreBatch as plain Python on real frames read from real files: 1:1 rows, reasons, exact scores."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from conftest import crops, tensor_with_nulls, write_bad_archive, write_good

from cropray.archive import resolve_archive
from cropray.bundle import load_bundle
from cropray.fastpath import PATHS, TOLERANCE
from cropray.scoring.frames import frame_schema, read_unit
from cropray.scoring.plan import plan_archive
from cropray.scoring.scorer import KIND, QUARANTINED, READ_ERROR, SCORED, ScoreBatch, bundle_files


def eager_scores(model, x: np.ndarray) -> np.ndarray:
    """(N,) scores of the model as trained: its own forward, fp32, one batch."""
    with torch.inference_mode():
        return model.eval()(torch.from_numpy(x)).numpy()


def frames(plan, files, group=None):
    """Every unit's frames, as the Ray read tasks would yield them, concatenated per group."""
    out = {}
    for g, spec in plan.specs.items():
        if group and g != group:
            continue
        schema = frame_schema(plan.crop_types[g], plan.id_type, plan.keep_fields)
        parts = [t for u in plan.units if u.group == g for t in read_unit(u, files.filesystem, schema, 7)]
        out[g] = (pa.concat_tables(parts), spec)
    return out


def test_scores_equal_in_process_model_and_rows_map_one_to_one(tmp_path, bundle_dir):
    write_good(tmp_path / "a", 50, files=2)
    files = resolve_archive(str(tmp_path / "a"))
    plan = plan_archive(files, model_shape=(64, 64), keep=("obs",))
    ((table, spec),) = frames(plan, files).values()
    sb = ScoreBatch(str(bundle_dir("shallow_cnn")), spec, precision="fp32", threads=1, model_batch=16)
    out = sb(table)
    assert out.num_rows == table.num_rows == 50
    assert out.column(KIND).to_numpy().tolist() == [SCORED] * 50
    assert out.column("obs").to_pylist() == table.column("obs").to_pylist()  # --keep passed through
    # reference: the bundle's eager model as trained (no fast path: no BN folding, no numpy
    # preprocessing, no chunking) on the same crops decoded independently of ScoreBatch
    b = load_bundle(bundle_dir("shallow_cnn"))
    x = np.stack([np.asarray(r, np.float32).reshape(1, 64, 64) for r in table.column("crop").to_pylist()])
    ref = eager_scores(b.model, x)
    got = out.column("score").to_numpy()
    # --precision fp32 on CPU: ONNX Runtime fp32, the same maths with other kernels
    assert sb.describe()["path"] == "onnx_fp32" and PATHS["onnx_fp32"].precision == "fp32"
    np.testing.assert_allclose(got, ref, rtol=0, atol=TOLERANCE["fp32"])
    clear = np.abs(ref - b.threshold) > TOLERANCE["fp32"]  # decisions away from the threshold must agree
    assert clear.sum() >= 40
    assert (out.column("is_signal").to_numpy(zero_copy_only=False)[clear] == (ref >= b.threshold)[clear]).all()


def test_bad_rows_get_reasons_and_read_errors_become_markers(tmp_path, bundle_dir):
    expect = write_bad_archive(tmp_path / "bad")
    files = resolve_archive(str(tmp_path / "bad"))
    plan = plan_archive(files, model_shape=(64, 64))
    assert [f.uri.rsplit("/", 1)[-1] for f in plan.files if f.error] == ["d.parquet"]  # footer pre-check
    # from bytes, as actors get it through the object store
    reasons, errors, n = {}, [], 0
    for table, spec in frames(plan, files).values():
        out = ScoreBatch(bundle_files(bundle_dir()), spec, precision="fp32", threads=1)(table)
        n += out.num_rows
        kind = out.column(KIND).to_numpy()
        assert out.num_rows == table.num_rows
        for r in out.filter(pa.array(kind == QUARANTINED)).column("reason").to_pylist():
            reasons[r] = reasons.get(r, 0) + 1
        errors += out.filter(pa.array(kind == READ_ERROR)).column("reason").to_pylist()
        scored = out.filter(pa.array(kind == SCORED))
        assert scored.column("score").null_count == 0 and np.isfinite(scored.column("score").to_numpy()).all()
    assert reasons == expect["reasons"]
    assert len(errors) == 1 and "e.parquet: read failed" in errors[0]


def test_empty_batch(tmp_path, bundle_dir):
    write_good(tmp_path / "a", 4, files=1)
    files = resolve_archive(str(tmp_path / "a"))
    plan = plan_archive(files, model_shape=(64, 64))
    ((table, spec),) = frames(plan, files).values()
    out = ScoreBatch(str(bundle_dir()), spec, precision="fp32", threads=1)(table.slice(0, 0))
    assert out.num_rows == 0


@pytest.mark.parametrize("unit_rows,expect_units", [(1, 4), (20, 2), (10**6, 1)])
def test_units_are_whole_row_groups_with_stable_keys(tmp_path, unit_rows, expect_units):
    pq.write_table(pa.table({"crop_id": np.arange(40), "crop": tensor_with_nulls(crops(40, 0), [])}),
                   tmp_path / "x.parquet", row_group_size=10)
    files = resolve_archive(str(tmp_path))
    p1 = plan_archive(files, model_shape=(64, 64), unit_rows=unit_rows)
    p2 = plan_archive(files, model_shape=(64, 64), unit_rows=unit_rows)
    assert len(p1.units) == expect_units and [u.key for u in p1.units] == [u.key for u in p2.units]
    assert sum(u.rows for u in p1.units) == 40
    assert [u.first_row for u in p1.units] == list(np.cumsum([0] + [u.rows for u in p1.units])[:-1])
    assert p1.id_type == pa.int64()


def test_plan_unifies_ids_and_fails_wrong_shape(tmp_path):
    pq.write_table(pa.table({"crop_id": np.arange(3), "crop": tensor_with_nulls(crops(3, 0), [])}), tmp_path / "i.parquet")
    pq.write_table(pa.table({"crop_id": ["x", "y"], "crop": tensor_with_nulls(crops(2, 0), [])}), tmp_path / "s.parquet")
    small = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(2 * 256, np.float32)), 256)
    pq.write_table(pa.table({"crop_id": ["p", "q"], "crop": small}), tmp_path / "t.parquet")
    plan = plan_archive(resolve_archive(str(tmp_path)), model_shape=(64, 64))
    assert plan.id_type == pa.string()  # int ids and string ids together: all strings
    errs = {f.uri.rsplit("/", 1)[-1]: f.error for f in plan.files}
    assert errs["i.parquet"] is None and "16x16" in errs["t.parquet"] and "64x64" in errs["t.parquet"]
