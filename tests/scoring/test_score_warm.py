"""Warm start (cropray.scoring.warm, cropray.fastpath.graph_cache): the second actor reuses the first's
build, bit for bit, and a damaged or inconsistent entry is refused and rebuilt."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import crops, write_good

from cropray.archive import resolve_archive
from cropray.fastpath import graph_cache, probe
from cropray.scoring.plan import plan_archive
from cropray.scoring.scorer import ScoreBatch, bundle_files
from cropray.scoring.source import frame_schema, read_unit
from cropray.scoring.warm import compile_pays_from

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
BATCH = 32


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CROPRAY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CROPRAY_PROBE", raising=False)
    return tmp_path / "cache"


@pytest.fixture
def job(tmp_path, bundle_dir, cache):
    """(shipped bundle bytes, crop spec, one real frame of 40 rows); the probe cache says onnx_fp32 wins
    here, so the full build's choice does not depend on this machine's speeds."""
    from cropray.bundle import load_bundle

    spec, table = _one_frame(tmp_path / "a")
    torch.set_num_threads(1)  # the key has the thread count ScoreBatch(threads=1) sets
    key = probe.cache_key(load_bundle(bundle_dir()).model, device="cpu", batch=BATCH)
    slow = {"crops_per_s": 1.0, "compile_s": 99.0}  # compiled: slower, so no compile ever pays
    probe.save_entry(key, {"onnx_fp32": {"crops_per_s": 1000.0}, "fold_cl": {"crops_per_s": 100.0},
                           "bf16": {"rejected": "test"}, "compile_fp32": slow, "compile_bf16": slow, "int8": slow})
    return bundle_files(bundle_dir()), spec, table


def _one_frame(folder):
    """(crop spec, the one real 40-row frame) of a one-file archive written to `folder`."""
    write_good(folder, 40, files=1)
    files = resolve_archive(str(folder))
    plan = plan_archive(files, model_shape=(64, 64))
    (unit,) = plan.units
    schema = frame_schema(plan.crop_types[unit.group], plan.id_type, plan.keep_fields)
    return plan.specs[unit.group], next(iter(read_unit(unit, files.filesystem, schema, 1024)))


def _actor(blobs, spec, rows=1000):
    return ScoreBatch(blobs, spec, device="cpu", threads=1, model_batch=BATCH, expected_rows=rows)


def _entry(cache):
    (d,) = (cache / "warm").iterdir()
    return d


def test_the_second_actor_reuses_the_first_build_bit_for_bit(job, cache):
    blobs, spec, table = job
    first = _actor(blobs, spec)
    w1 = first.describe()["warm_start"]
    assert first.path == "onnx_fp32" and w1["used"] is False and w1["reason"] == "no entry (absent)", w1
    assert w1["stored"] == str(_entry(cache)), w1
    second = _actor(blobs, spec)
    w2 = second.describe()["warm_start"]
    assert w2["used"] is True and w2["check_max_abs_diff"] <= graph_cache.TOLERANCE["fp32"], w2
    assert second.path == "onnx_fp32" and not hasattr(second, "bundle")  # no torch model was built
    a, b = first(table), second(table)
    np.testing.assert_array_equal(a.column("score").to_numpy(), b.column("score").to_numpy())
    assert a.column("is_signal").to_pylist() == b.column("is_signal").to_pylist()
    assert second.threshold == first.threshold
    # an actor expecting more rows than the stored choice holds for builds fully (the probe may compile)
    meta = json.loads((_entry(cache) / "entry.json").read_text())
    assert meta["max_rows"] is None  # the cached compiled rates are slower: no compile ever pays


def test_a_damaged_entry_is_detected_deleted_and_rebuilt(job, cache):
    blobs, spec, table = job
    ref = _actor(blobs, spec)(table).column("score").to_numpy()
    graph = _entry(cache) / "graph.onnx"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the weights
    graph.write_bytes(bytes(data))
    again = _actor(blobs, spec)
    w = again.describe()["warm_start"]
    assert w["used"] is False and "graph.onnx sha256 mismatch" in w["reason"], w
    assert w["stored"] == str(_entry(cache))  # the full build wrote a good entry back
    np.testing.assert_array_equal(again(table).column("score").to_numpy(), ref)
    assert _actor(blobs, spec).describe()["warm_start"]["used"] is True
    (_entry(cache) / "entry.json").write_text("{not json")
    assert "unreadable" in _actor(blobs, spec).describe()["warm_start"]["reason"]


def test_an_entry_that_does_not_reproduce_its_eager_scores_is_refused(job, cache):
    """Digests all consistent (as if rewritten whole), but the stored eager scores are not what the graph
    computes: the reuse check refuses it and the actor rebuilds from the bundle."""
    blobs, spec, table = job
    _actor(blobs, spec)
    key = _entry(cache).name
    entry, why = graph_cache.load(key)
    assert why == "hit"
    graph_cache.store(key, graph=entry.graph, check_x=entry.check_x, check_ref=entry.check_ref + 1e-3,
                      meta=entry.meta)
    w = _actor(blobs, spec).describe()["warm_start"]
    assert w["used"] is False and "WarmMismatch" in w["reason"] and w["stored"], w


def test_an_entry_is_not_used_where_a_compile_could_pay(job, cache):
    blobs, spec, _ = job
    _actor(blobs, spec)
    key = _entry(cache).name
    entry, _ = graph_cache.load(key)
    graph_cache.store(key, graph=entry.graph, check_x=entry.check_x, check_ref=entry.check_ref,
                      meta={**entry.meta, "max_rows": 5000})
    assert _actor(blobs, spec, rows=4000).describe()["warm_start"]["used"] is True
    w = _actor(blobs, spec, rows=5000).describe()["warm_start"]
    assert w["used"] is False and "compile may pay back from ~5,000" in w["reason"], w


def test_compile_pays_from_by_the_probes_rule():
    # onnx_fp32 measured at 1,000 crops/s; compile_fp32 never measured: guessed 1.2 x 1,000 after 15 s.
    # 15 + n/1200 < n/1000  <=>  n > 15 / (1/1000 - 1/1200) = 90,000 rows.
    report = {"chosen": "onnx_fp32", "measured": {"onnx_fp32": 1000.0}, "cached": {},
              "skipped_compiles": [{"path": "compile_fp32", "reason": "..."}]}
    assert probe.EXPLORE_GAIN["fp32"] == 1.2 and probe.EXPLORE_COMPILE_S["fp32"] == 15.0
    assert compile_pays_from(report) == pytest.approx(90_000)
    report["cached"] = {"compile_fp32": {"crops_per_s": 900.0, "compile_s": 8.0}}  # measured slower before
    assert compile_pays_from(report) is None
    assert compile_pays_from(None) is None  # no probe: there was no choice to remake


def test_an_onnx_int8_choice_is_warm_started_too(tmp_path, bundle_dir, cache):
    """A bundle whose path-aware CV admits onnx_int8, on a machine where it is the fastest: the first
    actor quantizes and stores, the second scores the same int8 graph without torch, bit for bit."""
    from cropray.bundle import load_bundle, save_bundle
    from cropray.fastpath.quality import ExecutionPaths, PathQuality, admissible_paths

    src = load_bundle(bundle_dir())
    iv = {"value": 0.95, "lo": 0.93, "hi": 0.97}
    q = PathQuality("ok", roc_auc=iv, recall_at_1pct_fpr=iv, threshold=src.threshold, max_abs_diff=0.0,
                    flips_vs_fp32=0, n=100)  # the record is data for the rule: real ones come from path_cv
    paths = {"eager": q, "fold_cl": q, "onnx_int8": q}
    rec = ExecutionPaths(interval=(0.93, 0.97), paths=paths, admissible=admissible_paths((0.93, 0.97), paths))
    out = save_bundle(src.model, tmp_path / "b8", threshold=src.threshold, train_summary={"n_labels": 16,
                      "input_shape": [64, 64]}, metrics={}, calibration_crops=crops(64, seed=3)[:, None],
                      execution_paths=rec)
    spec, table = _one_frame(tmp_path / "a8")
    torch.set_num_threads(1)
    key = probe.cache_key(load_bundle(out).model, device="cpu", batch=BATCH)
    slow = {"crops_per_s": 1.0, "compile_s": 99.0}
    probe.save_entry(key, {"onnx_int8": {"crops_per_s": 2000.0}, "onnx_fp32": {"crops_per_s": 1000.0},
                           "fold_cl": {"crops_per_s": 100.0}, "compile_fp32": slow})
    blobs = bundle_files(out)
    first = _actor(blobs, spec)
    w1 = first.describe()["warm_start"]
    assert first.path == "onnx_int8" and w1["stored"] == str(_entry(cache)), (first.path, w1)
    second = _actor(blobs, spec)
    w2 = second.describe()["warm_start"]
    assert w2["used"] is True and second.path == "onnx_int8" and not hasattr(second, "bundle"), w2
    a, b = first(table), second(table)
    np.testing.assert_array_equal(a.column("score").to_numpy(), b.column("score").to_numpy())
    assert second.threshold == first.threshold
