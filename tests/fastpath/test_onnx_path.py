"""The ONNX Runtime path (`onnx_fp32`): built from the model's weights, checked against eager fp32."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cropray.fastpath import TOLERANCE, build_scorer
from cropray.fastpath.policy import flips
from cropray.models import build_model

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CROPRAY_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _eager(model, x):
    with torch.inference_mode():
        return model(torch.from_numpy(x)).numpy()


def test_onnx_path_matches_eager_fp32_at_any_batch_size(trained_shallow, fixed_batch):
    tm = trained_shallow
    s = build_scorer(tm.model, path="onnx_fp32", threshold=tm.threshold, batch_size=64, threads=1)
    d = s.describe()
    assert d["path"] == "onnx_fp32" and d["runtime"] == "onnxruntime" and d["fallbacks"] == [], d
    assert d["ort_threads"] == 1 == d["threads"]  # the actor's thread count, not every core
    assert d["preprocess"].startswith("numpy") and d["check_max_abs_diff"] <= TOLERANCE["fp32"]
    x = fixed_batch[:64 + 13]
    ref = _eager(tm.model, x)
    got = np.concatenate([s(x[:5]), s(x[5:69]), s(x[69:])])  # 5, 64 and 8 rows: one dynamic-batch graph
    assert got.dtype == np.float32 and got.shape == ref.shape
    assert np.abs(got - ref).max() <= TOLERANCE["fp32"]
    assert flips(ref, got, tm.threshold) == 0
    np.testing.assert_array_equal(s(x)[:5], got[:5])


@pytest.mark.parametrize("arch", ["siamese", "deep_cnn"])
def test_onnx_path_exports_every_architecture(arch, fixed_batch):
    torch.manual_seed(0)
    model = build_model(arch).eval()
    if arch == "siamese":  # scored against a gallery: give it one
        from cropray.bench.trained import train_briefly

        model = train_briefly(arch, seconds=float("inf"), max_steps=2, n_train=128, seed=0).model
    x = fixed_batch[:32]
    got = build_scorer(model, path="onnx_fp32", batch_size=32)(x)
    assert np.abs(got - _eager(model, x)).max() <= TOLERANCE["fp32"]


class _BatchTrap(nn.Module):
    """Traced at batch 8 it bakes in the first branch; at other batch sizes eager takes the second, so
    the exported graph and the eager model disagree by 1: the build check must refuse the graph."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x):
        s = torch.log1p(x).mean(dim=(1, 2, 3)) * self.w
        return s if x.shape[0] == 8 else s + 1.0


def test_a_graph_that_disagrees_with_eager_is_refused(fixed_batch):
    s = build_scorer(_BatchTrap().eval(), path="onnx_fp32", batch_size=32, calibration=fixed_batch[:32])
    d = s.describe()
    assert d["path"] == "fold_cl", d  # the last resort, not a wrong graph
    reason = next(f["reason"] for f in d["fallbacks"] if f["path"] == "onnx_fp32")
    assert "disagrees with the eager model" in reason


class _MedianModel(nn.Module):
    """torch.median along a dim: not exportable to ONNX, so the path cannot be built."""

    def forward(self, x):
        return x.flatten(1).median(dim=1).values


def test_a_model_onnx_cannot_export_falls_back_with_the_reason(fixed_batch):
    s = build_scorer(_MedianModel().eval(), path="onnx_fp32", batch_size=16)
    d = s.describe()
    x = fixed_batch[:16]
    if d["path"] == "onnx_fp32":  # a newer exporter learned median: then it must agree
        assert np.abs(s(x) - _eager(_MedianModel(), x)).max() <= TOLERANCE["fp32"]
    else:
        assert d["path"] == "fold_cl" and any(f["path"] == "onnx_fp32" for f in d["fallbacks"]), d


def test_a_kept_graph_is_reused_and_a_wrong_one_is_re_exported(trained_shallow, fixed_batch, cache_dir):
    tm = trained_shallow
    x = fixed_batch[:32]
    ref = _eager(tm.model, x)
    first = build_scorer(tm.model, path="onnx_fp32", batch_size=32)
    assert first.describe()["graph_cached"] is False
    (kept,) = (cache_dir / "onnx").glob("*.onnx")
    again = build_scorer(tm.model, path="onnx_fp32", batch_size=32)
    assert again.describe()["graph_cached"] is True and np.abs(again(x) - ref).max() <= TOLERANCE["fp32"]
    # Replace the kept graph with another model's: the eager check refuses it and the path re-exports.
    torch.manual_seed(3)
    other = build_model("shallow_cnn", **tm.model.hparams).eval()
    build_scorer(other, path="onnx_fp32", batch_size=32)
    wrong = next(f for f in (cache_dir / "onnx").glob("*.onnx") if f != kept)
    kept.write_bytes(wrong.read_bytes())  # its sha256 beside it no longer matches: re-exported
    fixed = build_scorer(tm.model, path="onnx_fp32", batch_size=32)
    d = fixed.describe()
    assert d["path"] == "onnx_fp32" and d["graph_cached"] is False, d
    assert np.abs(fixed(x) - ref).max() <= TOLERANCE["fp32"]
    # the wrong graph with its own (matching) digest: the eager check is what refuses it
    kept.write_bytes(wrong.read_bytes())
    kept.with_suffix(".sha256").write_bytes(wrong.with_suffix(".sha256").read_bytes())
    d = build_scorer(tm.model, path="onnx_fp32", batch_size=32).describe()
    assert d["path"] == "onnx_fp32" and d["graph_cached"] is False, d
    # a truncated file is refused by its digest, and exported afresh
    kept.write_bytes(kept.read_bytes()[:100])
    again = build_scorer(tm.model, path="onnx_fp32", batch_size=32)
    assert again.describe()["graph_cached"] is False and np.abs(again(x) - ref).max() <= TOLERANCE["fp32"]
    assert build_scorer(tm.model, path="onnx_fp32", batch_size=32).describe()["graph_cached"] is True


def test_onnx_int8_quantizes_the_trunk_and_keeps_prior_and_score_fp32(trained_shallow, fixed_batch, cache_dir):
    """onnx_int8: ORT's static int8 on the network's modules, ranges from the calibration crops; the
    track prior's Taylor tree and the score's top-level arithmetic (logit + prior, sigmoid) stay fp32.
    Kept like the fp32 graph, keyed by the calibration crops."""
    import onnx

    tm = trained_shallow
    calib = tm.calibration_crops
    s = build_scorer(tm.model, path="onnx_int8", threshold=tm.threshold, batch_size=64, threads=1, calibration=calib)
    d = s.describe()
    assert d["path"] == "onnx_int8" and d["runtime"] == "onnxruntime" and d["fallbacks"] == [], d
    assert "trunk/head nodes int8" in d["quantized"] and d["calibration_crops"] == len(calib), d
    x = fixed_batch[:77]
    ref, got = _eager(tm.model, x), np.concatenate([s(x[:5]), s(x[5:])])  # dynamic batch, as fp32
    err = np.abs(got - ref).max()
    assert 0 < err <= TOLERANCE["int8"], err  # really quantized (not fp32), and close
    lattice = np.abs(got * 255 - np.round(got * 255)) < 1e-3  # a uint8 sigmoid's output levels
    assert lattice.mean() < 0.5, lattice.mean()  # the sigmoid is fp32: scores are not on that lattice
    (kept,) = (cache_dir / "onnx").glob("*.onnx")
    g = onnx.load_from_string(kept.read_bytes()).graph
    dq_out = {o for n in g.node if n.op_type == "DequantizeLinear" for o in n.output}
    q_in = {i for n in g.node if n.op_type == "QuantizeLinear" for i in n.input}
    convs = [n for n in g.node if n.op_type == "Conv"]
    assert len(convs) == 3 and all(set(n.input) & dq_out for n in convs)  # every conv reads int8
    # activations are re-quantized right after each conv + ReLU (ReLU folded into the conv's range)
    assert sum("Relu_output" in i for i in q_in) >= 3, sorted(q_in)
    prior = [n for n in g.node if n.name.startswith("/track/")]
    assert len(prior) > 100 and not [n.name for n in prior if set(n.input) & dq_out]  # the prior is fp32
    assert not [n.name for n in g.node if n.op_type in ("Sigmoid", "Add") and n.name.count("/") < 2
                and set(n.input) & dq_out]
    again = build_scorer(tm.model, path="onnx_int8", batch_size=64, threads=1, calibration=calib)
    assert again.describe()["graph_cached"] is True and np.array_equal(again(x), s(x))
    other = build_scorer(tm.model, path="onnx_int8", batch_size=64, threads=1, calibration=calib[:64])
    assert other.describe()["graph_cached"] is False  # other calibration crops: another graph


@pytest.mark.parametrize("arch", ["siamese", "deep_cnn"])
def test_onnx_int8_runs_every_architecture(arch, fixed_batch):
    from cropray.bench.trained import train_briefly

    tm = train_briefly(arch, seconds=float("inf"), max_steps=5, n_train=128, seed=0)
    x = fixed_batch[:32]
    s = build_scorer(tm.model, path="onnx_int8", batch_size=32, calibration=tm.calibration_crops)
    assert np.abs(s(x) - _eager(tm.model, x)).max() <= TOLERANCE["int8"]
    assert "trunk/head nodes int8" in s.describe()["quantized"]


def test_onnx_int8_needs_calibration_crops(trained_shallow):
    from cropray.errors import ConfigError

    with pytest.raises(ConfigError, match="calibration"):
        build_scorer(trained_shallow.model, path="onnx_int8", batch_size=32)
