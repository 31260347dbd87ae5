"""One runtime per device: each CPU runtime against the eager reference, auto's order, the ISA rule,
and the fallbacks. Real trained model, real ONNX Runtime; the CPU's ISA level is passed in (never read
from the host) wherever the expectation depends on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cropray.bundle_quality import LEGACY, RUNTIMES
from cropray.errors import ConfigError, CroprayError
from cropray.fastpath import PATHS, TOLERANCE, build_scorer
from cropray.fastpath.export import eager_scores
from cropray.fastpath.isa import int8_settings, isa
from cropray.fastpath.policy import candidates, resolve

pytest.importorskip("onnxruntime")

FLAGS = "flags\t\t: fpu sse sse2 avx avx2 fma {}\n"


def test_runtime_names_are_the_manifest_schemas():
    # bundle_quality (below fastpath in the layers) keeps its own list: they must not drift apart
    assert tuple(PATHS) == RUNTIMES and not set(LEGACY) & set(PATHS)


@pytest.mark.parametrize("extra, level, reduce_range", [
    ("", "avx2", True),  # Zen 3 / Haswell: u8s8 without VNNI saturates 16-bit sums -> 7-bit weights
    ("avx512f avx512bw", "avx512", True),  # Skylake-X: AVX-512 without VNNI, the same vpmaddubsw
    ("avx512f avx512bw avx512_vnni", "avx512_vnni", False),
    ("avx512f avx512_vnni amx_tile amx_int8", "amx", False),
])
def test_isa_level_from_cpuinfo_picks_reduce_range(extra, level, reduce_range):
    text = "processor\t: 0\n" + FLAGS.format(extra) + "processor\t: 1\n"
    assert isa(text) == level
    assert int8_settings(level) == {"reduce_range": reduce_range, "per_channel": True}
    assert isa("no flags line") == "other" and int8_settings("other")["reduce_range"] is True
    with pytest.raises(ValueError, match="unknown ISA level"):
        int8_settings("sse9")


def test_auto_order_per_device():
    kw = dict(has_calibration=True, has_weights=True, ort=True, numpy_runtime=True)
    assert candidates("cpu", admissible=None, **kw) == ["onnx_fp32", "fold_cl"]
    assert candidates("cpu", admissible=("eager", "onnx_int8"), **kw) == ["onnx_int8", "onnx_fp32", "fold_cl"]
    assert candidates("cpu", admissible=("onnx_int8",), **{**kw, "has_calibration": False}) == ["onnx_fp32", "fold_cl"]
    assert candidates("cpu", admissible=None, **{**kw, "ort": False}) == ["fold_cl"]
    assert candidates("cpu", admissible=None, **{**kw, "has_weights": False}) == ["numpy", "fold_cl"]
    assert candidates("cuda", admissible=("cuda_amp",), **kw) == ["cuda_amp", "fold_cl"]
    assert candidates("cuda", admissible=("onnx_int8",), **kw) == ["fold_cl"]


def test_explicit_requests_are_checked_against_the_device():
    assert resolve("auto", "auto", "cpu") == "auto"
    assert resolve("auto", "int8", "cpu") == "onnx_int8" and resolve("auto", "bf16", "cuda") == "cuda_amp"
    with pytest.raises(ConfigError, match="--precision bf16 does not run on cpu"):
        resolve("auto", "bf16", "cpu")
    with pytest.raises(ConfigError, match="runs on cuda, not cpu"):
        resolve("cuda_amp", "auto", "cpu")
    with pytest.raises(ConfigError, match="unknown runtime 'compile_bf16'"):
        resolve("compile_bf16", "auto", "cpu")


@pytest.mark.parametrize("name", ["eager", "fold_cl", "onnx_fp32"])
def test_fp32_runtimes_equal_the_eager_model(trained_shallow, fixed_batch, name):
    tm = trained_shallow
    ref = eager_scores(tm.model, fixed_batch)
    s = build_scorer(tm.model, path=name, device="cpu", calibration=tm.calibration_crops, threshold=tm.threshold)
    assert s.describe()["path"] == name and s.threshold == tm.threshold
    np.testing.assert_allclose(s(fixed_batch), ref, rtol=0, atol=TOLERANCE["fp32"])
    assert s(fixed_batch[:0]).shape == (0,)


def test_int8_with_the_avx2_settings_is_within_tolerance_on_any_cpu(trained_shallow, fixed_batch):
    """7-bit weights (what an AVX2-only CPU gets) cannot saturate u8s8 sums, so this holds on every x86-64."""
    tm = trained_shallow
    ref = eager_scores(tm.model, fixed_batch)
    s = build_scorer(tm.model, path="onnx_int8", device="cpu", calibration=tm.calibration_crops, isa_level="avx2")
    d = s.describe()
    assert d["path"] == "onnx_int8" and d["int8"]["reduce_range"] is True and d["check_max_abs_diff"] <= 0.1
    got = s(fixed_batch)
    assert 0 < np.abs(got - ref).max() <= TOLERANCE["int8"]  # quantized (not fp32 in disguise), and close
    assert d["track_prior"] == "numpy, beside the graph"  # the physics term stays fp32, outside the graph


def test_int8_needs_calibration_crops(trained_shallow):
    with pytest.raises(ConfigError, match="calibration crops"):
        build_scorer(trained_shallow.model, device="cpu", precision="int8")


def _int8_bundle(tm, out):
    """The trained model saved with its exported graph and a quality record that admits onnx_int8."""
    from cropray.bundle import load_bundle, save_bundle
    from cropray.bundle_quality import ExecutionPaths, PathQuality
    from cropray.fastpath.export import make_pack

    m = {"value": 0.9, "lo": 0.8, "hi": 0.95}
    q = PathQuality("ok", roc_auc=m, recall_at_1pct_fpr=m, threshold=0.5, flips_vs_fp32=0, max_abs_diff=0.0, n=10)
    rec = ExecutionPaths(interval=(0.8, 0.95), paths={"eager": q, "onnx_int8": q}, admissible=("eager", "onnx_int8"))
    return load_bundle(save_bundle(tm.model, out, threshold=tm.threshold, train_summary={}, metrics={},
                                   calibration_crops=tm.calibration_crops, execution_paths=rec,
                                   graph=make_pack(tm.model, tm.calibration_crops, (64, 64))))


def test_a_cached_int8_graph_that_disagrees_is_refused_dropped_and_rebuilt(tmp_path, trained_shallow, fixed_batch):
    """An int8 graph quantized on constant crops (every normalised pixel 0: ranges that clip real crops),
    planted in the cache under this bundle's key: the agreement check refuses it, auto runs onnx_fp32 and
    says why, the entry is deleted, and the next build quantizes afresh and passes."""
    from cropray.fastpath import graph_cache
    from cropray.fastpath.ort import int8_pack

    tm = trained_shallow
    b = _int8_bundle(tm, tmp_path / "b")
    key = graph_cache.graph_key(b.bundle_sha256, "int8", "avx2")
    flat = np.full((32, 1, 64, 64), 3.0, np.float32)
    graph_cache.store(key, int8_pack(b.graph_pack, flat, int8_settings("avx2")))
    s = build_scorer(b, device="cpu", isa_level="avx2")
    d = s.describe()
    assert d["candidates"] == ["onnx_int8", "onnx_fp32", "fold_cl"] and d["path"] == "onnx_fp32", d
    assert d["fallbacks"][0]["path"] == "onnx_int8" and "disagrees with the eager model" in d["fallbacks"][0]["reason"]
    assert d["graph_source"] == "bundle" and s.threshold == b.threshold  # onnx_fp32 was not measured: fp32's
    np.testing.assert_allclose(s(fixed_batch[:64]), eager_scores(tm.model, fixed_batch[:64]), atol=TOLERANCE["fp32"])
    assert graph_cache.load(key) is None
    again = build_scorer(b, device="cpu", isa_level="avx2").describe()
    assert again["path"] == "onnx_int8" and again["graph_source"] == "quantized" and again["fallbacks"] == []
    assert graph_cache.load(key) is not None  # stored once it passed
    third = build_scorer(b, device="cpu", isa_level="avx2").describe()
    assert third["graph_source"] == "cache" and third["threshold_source"] == "path-aware CV"


def test_an_explicit_runtime_that_cannot_run_raises():
    from cropray.models import build_model

    with pytest.raises(CroprayError, match="numpy runtime scores the label-free dedoppler"):
        build_scorer(build_model("shallow_cnn").eval(), path="numpy", device="cpu")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        build_scorer(build_model("shallow_cnn").eval(), device="cuda", cuda=False)


def test_label_free_dedoppler_runs_on_the_numpy_runtime(fixed_batch):
    from cropray.models import build_model

    m = build_model("dedoppler").eval()
    s = build_scorer(m, device="cpu", threshold=3.0)
    assert s.describe()["path"] == "numpy" and s.describe()["candidates"] == ["numpy", "fold_cl"]
    with torch.inference_mode():
        ref = m(torch.from_numpy(fixed_batch[:64])).numpy()
    np.testing.assert_allclose(s(fixed_batch[:64]), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_amp_is_within_bf16_tolerance_of_eager(trained_shallow, fixed_batch):
    tm = trained_shallow
    ref = eager_scores(tm.model, fixed_batch)
    s = build_scorer(tm.model, path="cuda_amp", device="cuda")
    d = s.describe()
    assert d["path"] == "cuda_amp" and d["channels_last"] and d["autocast"] in ("bfloat16", "float16")
    got = s(fixed_batch)
    assert 0 < np.abs(got - ref).max() <= TOLERANCE["bf16"]
    fold = build_scorer(tm.model, path="fold_cl", device="cuda")
    np.testing.assert_allclose(fold(fixed_batch), ref, rtol=0, atol=1e-4)
