"""The exported graph as bundle data and the one graph cache: saved with its sha256 in the manifest,
refused when tampered with, exported once (and cached) for an old bundle without it, a damaged cache
entry deleted and rebuilt."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cropray.bundle import load_bundle, save_bundle
from cropray.bundle_graph import GRAPH_FILE, GRAPH_META, GraphPack, check_crops
from cropray.bundle_manifest import MANIFEST
from cropray.errors import BundleError
from cropray.fastpath import TOLERANCE, build_scorer, graph_cache
from cropray.fastpath.export import eager_scores, make_pack

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def pack(trained_shallow):
    tm = trained_shallow
    return make_pack(tm.model, tm.calibration_crops, (64, 64))


def _save(tm, out, graph=None):
    return save_bundle(tm.model, out, threshold=tm.threshold, train_summary={}, metrics={},
                       calibration_crops=tm.calibration_crops, graph=graph)


def test_pack_carries_eager_check_scores_and_the_numpy_preprocessing(trained_shallow, pack):
    tm = trained_shallow
    cx = check_crops(tm.calibration_crops, (64, 64))
    np.testing.assert_array_equal(pack.check_scores, eager_scores(tm.model, cx))  # the reference, not ORT's
    assert pack.preprocess["compress"] == "asinh" and pack.preprocess["stride"] >= 1
    assert pack.meta["check"] == "calibration" and pack.meta["input_shape"] == [64, 64]
    noise = make_pack(tm.model, None, (64, 64))  # no calibration crops: seeded noise, the same every time
    np.testing.assert_array_equal(noise.check_scores, eager_scores(tm.model, check_crops(None, (64, 64))))


def test_bundle_carries_the_graph_hash_checked(tmp_path, trained_shallow, pack, fixed_batch):
    out = _save(trained_shallow, tmp_path / "b", pack)
    files = json.loads((out / MANIFEST).read_text())["files"]
    assert {GRAPH_FILE, GRAPH_META} <= set(files)
    b = load_bundle(out)
    assert b.graph_pack == pack
    s = build_scorer(b, device="cpu")
    assert s.describe()["graph_source"] == "bundle" and s.describe()["path"] == "onnx_fp32"
    np.testing.assert_allclose(s(fixed_batch[:64]), eager_scores(b.model, fixed_batch[:64]), atol=TOLERANCE["fp32"])
    assert not (graph_cache.cache_root() / "graphs").exists()  # nothing exported, nothing cached
    (out / GRAPH_FILE).write_bytes(pack.graph[:-8] + bytes(8))  # a tampered graph: the manifest's sha256 refuses it
    with pytest.raises(BundleError, match=GRAPH_FILE):
        load_bundle(out)


def test_graph_json_is_validated(tmp_path, trained_shallow, pack):
    bad = GraphPack(pack.graph, {**pack.meta, "preprocess": {"flatten": True}})
    out = _save(trained_shallow, tmp_path / "b", bad)
    with pytest.raises(BundleError, match="graph.json: preprocess must be null or hold"):
        load_bundle(out)


def test_a_graph_of_another_model_is_refused_at_save(tmp_path, trained_shallow, pack):
    from cropray.models import build_model

    other = build_model("shallow_cnn").eval()  # untrained: its eager scores are not the pack's
    with pytest.raises(BundleError, match="graph.json's check scores are not this model's"):
        save_bundle(other, tmp_path / "b", threshold=0.5, train_summary={}, metrics={},
                    calibration_crops=trained_shallow.calibration_crops, graph=pack)


def test_an_old_bundle_is_exported_once_then_read_from_the_cache(tmp_path, trained_shallow, fixed_batch):
    b = load_bundle(_save(trained_shallow, tmp_path / "old"))
    assert b.graph_pack is None
    first = build_scorer(b, device="cpu", isa_level="avx2")
    assert first.describe()["graph_source"] == "exported"
    key = graph_cache.graph_key(b.bundle_sha256, "fp32", "avx2")
    assert graph_cache.load(key) is not None
    second = build_scorer(b, device="cpu", isa_level="avx2")
    assert second.describe()["graph_source"] == "cache"
    np.testing.assert_array_equal(first(fixed_batch[:32]), second(fixed_batch[:32]))
    # the key holds the ISA level and onnxruntime's version: another CPU class exports its own
    assert graph_cache.graph_key(b.bundle_sha256, "fp32", "avx512_vnni") != key
    # a damaged entry is deleted and the graph exported afresh
    (graph_cache.cache_root() / "graphs" / key / GRAPH_FILE).write_bytes(b"not a graph")
    assert graph_cache.load(key) is None and not (graph_cache.cache_root() / "graphs" / key).exists()
    assert build_scorer(b, device="cpu", isa_level="avx2").describe()["graph_source"] == "exported"
