"""A scoring actor's torch-free start (cropray.scoring.warm): the bundle's exported graph (or the graph
cache's, for an old bundle) checked against the eager scores it carries, no torch imported."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import crops, write_good

from cropray.archive import resolve_archive
from cropray.bundle_manifest import read_bundle_files
from cropray.scoring.frames import frame_schema, read_unit
from cropray.scoring.plan import plan_archive
from cropray.scoring.scorer import ScoreBatch, bundle_files
from cropray.scoring.warm import fast_start

pytest.importorskip("onnxruntime")
BATCH = 32


def _one_frame(folder):
    """(crop spec, the one real 40-row frame) of a one-file archive written to `folder`."""
    write_good(folder, 40, files=1)
    files = resolve_archive(str(folder))
    plan = plan_archive(files, model_shape=(64, 64))
    (unit,) = plan.units
    schema = frame_schema(plan.crop_types[unit.group], plan.id_type, plan.keep_fields)
    return plan.specs[unit.group], next(iter(read_unit(unit, files.filesystem, schema, 1024)))


@pytest.fixture(scope="module")
def with_graph(tmp_path_factory, bundle_dir):
    """The session's shallow CNN bundle, saved again with its exported graph (what training writes)."""
    from cropray.bundle import load_bundle, save_bundle
    from cropray.fastpath.export import make_pack

    b = load_bundle(bundle_dir())
    out = tmp_path_factory.mktemp("g") / "b"
    calib = crops(64, seed=5)[:, None]  # (64, 1, 64, 64): int8 ranges and the agreement check
    return save_bundle(b.model, out, threshold=b.threshold, train_summary={}, metrics={}, calibration_crops=calib,
                       graph=make_pack(b.model, calib, b.input_shape))


def _eager(bundle, table):
    import torch

    from cropray.bundle import load_bundle

    x = np.stack([np.asarray(r, np.float32).reshape(1, 64, 64) for r in table.column("crop").to_pylist()])
    with torch.inference_mode():
        return load_bundle(bundle).model(torch.from_numpy(x)).numpy()


def test_an_actor_starts_without_torch_and_scores_like_the_eager_model(tmp_path, with_graph):
    """In a fresh process (as a Ray actor): no torch import, onnx_fp32 from the bundle's own graph."""
    spec, table = _one_frame(tmp_path / "a")
    code = f"""
import json, sys, time
t0 = time.perf_counter()
from cropray.archive.spec import CropSpec
from cropray.scoring.scorer import ScoreBatch, bundle_files
import pyarrow.parquet as pq
sb = ScoreBatch(bundle_files({str(with_graph)!r}), CropSpec((64, 64), __import__("numpy").dtype("float32"), "list"),
                device="cpu", threads=1, model_batch={BATCH})
out = sb(pq.read_table({str(tmp_path / "t.parquet")!r}))
print(json.dumps({{"torch": "torch" in sys.modules, "warm": sb.warm, "path": sb.path, "s": time.perf_counter() - t0,
                  "scores": out.column("score").to_pylist(), "graph_source": sb.describe().get("graph_source")}}))
"""
    import pyarrow.parquet as pq

    pq.write_table(table, tmp_path / "t.parquet")
    assert spec.dtype == np.dtype("float32")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["torch"] is False and r["warm"]["used"] is True and r["path"] == "onnx_fp32"
    assert r["graph_source"] == "bundle"
    np.testing.assert_allclose(np.array(r["scores"], np.float32), _eager(with_graph, table), rtol=0, atol=1e-4)


def test_an_old_bundle_builds_fully_once_then_starts_from_the_cache(tmp_path, bundle_dir):
    spec, table = _one_frame(tmp_path / "a")
    blobs = bundle_files(bundle_dir())  # saved without a graph
    first = ScoreBatch(blobs, spec, device="cpu", threads=1, model_batch=BATCH)
    assert first.warm["used"] is False and "full build" in first.warm["reason"]
    assert first.describe()["graph_source"] == "exported" and first.path == "onnx_fp32"
    second = ScoreBatch(blobs, spec, device="cpu", threads=1, model_batch=BATCH)
    assert second.warm["used"] is True and second.describe()["graph_source"] == "cache"
    np.testing.assert_array_equal(first(table).column("score").to_numpy(), second(table).column("score").to_numpy())


def test_int8_is_quantized_once_per_isa_level_and_cached(tmp_path, with_graph):
    m, blobs = read_bundle_files(with_graph)
    s, rep = fast_start(m, blobs, precision="int8", device="cpu", threads=1, batch=BATCH, level="avx2")
    d = s.describe()
    assert rep["used"] and d["path"] == "onnx_int8" and d["graph_source"] == "quantized"
    assert d["int8"]["reduce_range"] is True and d["check_max_abs_diff"] <= 0.1
    again, _ = fast_start(m, blobs, precision="int8", device="cpu", threads=1, batch=BATCH, level="avx2")
    assert again.describe()["graph_source"] == "cache"
    other, _ = fast_start(m, blobs, precision="int8", device="cpu", threads=1, batch=BATCH, level="avx512_vnni")
    assert other.describe()["graph_source"] == "quantized" and other.describe()["int8"]["reduce_range"] is False


def test_requests_a_torch_free_start_cannot_answer_go_to_the_full_build(with_graph):
    m, blobs = read_bundle_files(with_graph)
    assert fast_start(m, blobs, precision="auto", device="cuda", threads=1, batch=BATCH)[0] is None
    blobs_no_graph = {k: v for k, v in blobs.items() if not k.startswith("graph.")}
    s, rep = fast_start(m, blobs_no_graph, precision="fp32", device="cpu", threads=1, batch=BATCH, level="avx2")
    assert s is None and "no exported graph" in rep["reason"]


def test_the_label_free_dedoppler_starts_on_the_numpy_runtime(tmp_path, bundle_dir):
    import torch

    from cropray.bundle import load_bundle

    spec, table = _one_frame(tmp_path / "a")
    m, blobs = read_bundle_files(bundle_dir("dedoppler"))
    s, rep = fast_start(m, blobs, precision="auto", device="cpu", threads=1, batch=BATCH)
    assert rep["used"] and s.describe()["path"] == "numpy" and s.threshold == m.threshold
    x = np.stack([np.asarray(r, np.float32).reshape(1, 64, 64) for r in table.column("crop").to_pylist()])
    with torch.inference_mode():
        ref = load_bundle(bundle_dir("dedoppler")).model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(s(x), ref, rtol=1e-5, atol=1e-5)
