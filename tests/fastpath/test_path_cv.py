"""Path-aware CV: each runtime's own out-of-fold AUC, admissibility, per-runtime threshold.

Real tiny models trained by `cross_validate`, real execution paths; the damaged path is a real
computation too (fold models whose logit is negated: that path ranks the crops backwards).
"""

from __future__ import annotations

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch

from cropray.bundle import load_bundle, save_bundle
from cropray.bundle_manifest import MANIFEST, BundleManifest
from cropray.bundle_quality import ExecutionPaths
from cropray.errors import BundleError
from cropray.fastpath import TOLERANCE, build_scorer
from cropray.synth import SynthConfig, generate
from cropray.train.config import TrainConfig
from cropray.train.cv import cross_validate
from cropray.train.path_cv import path_aware_cv

TINY = {"channels": [8, 16, 32]}  # tests/train/test_train_cv.py's tiny shallow CNN (track prior on)


@pytest.fixture(scope="module")
def tiny_cv():
    b = generate(60, SynthConfig(snr_range=(5.0, 60.0)), seed=3)  # not too easy: AUC < 1, a real interval
    x, y = b.crops[:, None].astype(np.float32), b.label.astype(np.int64)
    cfg = TrainConfig(arch="shallow_cnn", epochs=2, patience=5, model_kwargs=TINY, epoch_crops=1, min_epochs=0)
    return cross_validate(cfg, x, y, k=3, n_boot=0), x, y


@pytest.fixture(scope="module")
def record(tiny_cv):
    cv, x, y = tiny_cv
    # int8 with the AVX2 settings (7-bit weights): correct on every x86-64, so the record is the same everywhere
    return path_aware_cv(cv, x, y, paths=("fold_cl", "onnx_int8", "cuda_amp"), n_boot=200, seed=0,
                         isa_level="avx2", cuda=False)


def _damaged(cv):
    """The same CV whose fold models compute minus their logit (head and track prior negated): a
    path forced to lose its AUC (it ranks crops backwards)."""
    models = [copy.deepcopy(m) for m in cv.fold_models]
    for m in models:
        with torch.no_grad():
            for p in (m.head.weight, m.head.bias, m.track.scale, m.track.offset):
                p.neg_()
    return dataclasses.replace(cv, fold_models=models)


def test_each_path_gets_its_own_out_of_fold_metrics(tiny_cv, record):
    cv, x, y = tiny_cv
    ref, fold, q8 = record.paths["eager"], record.paths["fold_cl"], record.paths["onnx_int8"]
    assert ref.threshold == cv.threshold and ref.n == len(y) == fold.n
    lo, hi = record.interval
    assert 0.5 < lo <= ref.auc <= hi <= 1.0 and (lo, hi) == (ref.roc_auc["lo"], ref.roc_auc["hi"])
    # fp32 folded: the same maths as the fold models (other kernels), so the same ranking and decisions
    assert fold.status == "ok" and fold.max_abs_diff <= TOLERANCE["fp32"] and fold.flips_vs_fp32 == 0
    assert fold.auc == pytest.approx(ref.auc, abs=1e-9) and fold.threshold == pytest.approx(cv.threshold, abs=1e-3)
    assert q8.status == "ok" and 0 < q8.max_abs_diff <= TOLERANCE["int8"] and q8.threshold is not None
    assert {"value", "lo", "hi"} == set(q8.recall_at_1pct_fpr) and q8.roc_auc["lo"] is not None
    # admissible = measured (or stood for by a measured twin) with CV AUC >= the fp32 interval's lo
    assert {"eager", "fold_cl", "onnx_fp32"} <= set(record.admissible)
    assert ("onnx_int8" in record.admissible) == (q8.auc >= lo)
    # no GPU (cuda=False): cuda_amp is not measured, hence not admissible, and says so
    assert "cuda_amp" not in record.paths and "not measured" in record.why_not("cuda_amp")
    assert ExecutionPaths.from_dict(json.loads(json.dumps(record.to_dict())), "m") == record


def test_a_damaged_path_is_not_admissible(tiny_cv, record):
    cv, x, y = tiny_cv
    bad = path_aware_cv(_damaged(cv), x, y, paths=("fold_cl",), n_boot=200, seed=0, cuda=False)
    q = bad.paths["fold_cl"]
    assert q.status == "ok" and q.auc < bad.interval[0] and bad.interval == record.interval  # same fp32 reference
    assert "fold_cl" not in bad.admissible and "onnx_fp32" not in bad.admissible  # its fp32 twin too
    assert "below the fp32 interval" in bad.why_not("onnx_fp32")
    # a manifest claiming it admissible anyway is refused on load (values a digest cannot vouch for)
    raw = bad.to_dict()
    raw["admissible"] = [*raw["admissible"], "fold_cl"]
    with pytest.raises(BundleError, match="admissible lists 'fold_cl'.*below the fp32 interval"):
        ExecutionPaths.from_dict(raw, "manifest.json")


def test_onnx_int8_is_measured_with_calibration_from_the_training_part(tiny_cv):
    """ORT's int8 (a core dependency, no torchao): each fold's graph quantized on that fold's training
    crops only; its own out-of-fold AUC and threshold; admissible exactly when its AUC reaches fp32's lo."""
    cv, x, y = tiny_cv
    seen = []

    def calib(i, tr):
        seen.append((i, set(tr.tolist())))
        return x[tr][:64]

    rec = path_aware_cv(cv, x, y, paths=("onnx_int8",), n_boot=200, seed=0, calibration_of=calib, isa_level="avx2")
    q = rec.paths["onnx_int8"]
    assert q.status == "ok", q.reason
    assert 0 < q.max_abs_diff <= TOLERANCE["int8"] and q.threshold is not None and q.n == len(y)
    assert len(seen) == cv.k
    for i, tr in seen:
        assert not tr & set(np.flatnonzero(cv.fold == i).tolist())
    assert ("onnx_int8" in rec.admissible) == (q.auc >= rec.interval[0])


def test_bundle_records_it_and_the_scorer_applies_the_path_threshold(tmp_path, tiny_cv, record):
    cv, x, _ = tiny_cv
    model = cv.fold_models[0]
    out = save_bundle(model, tmp_path / "b", threshold=cv.threshold, train_summary={}, metrics={},
                      calibration_crops=x[:32], execution_paths=record)
    b = load_bundle(out)
    assert b.manifest.execution_paths == record
    s = build_scorer(b, device="cpu", isa_level="avx2")  # auto: int8 first when admitted, else ORT fp32
    d = s.describe()
    assert d["path"] == ("onnx_int8" if "onnx_int8" in record.admissible else "onnx_fp32")
    assert s.threshold == record.threshold_for(d["path"]) and d["threshold_source"] == "path-aware CV"
    # an explicit runtime gets that runtime's own threshold; an explicit threshold wins over both
    assert build_scorer(b, path="onnx_int8", isa_level="avx2").threshold == record.threshold_for("onnx_int8")
    assert build_scorer(b, path="fold_cl", threshold=0.25).threshold == 0.25
    # ScoreBatch decides is_signal at the scorer's threshold
    from cropray.archive.spec import CropSpec
    from cropray.scoring.scorer import ScoreBatch

    sb = ScoreBatch(str(out), CropSpec((64, 64), np.dtype("float32"), "list"), device="cpu", threads=1)
    assert sb.threshold == record.threshold_for(sb.path)


def test_a_bundle_without_the_record_loads_and_behaves_as_before(tmp_path, tiny_cv):
    cv, x, _ = tiny_cv
    out = save_bundle(cv.fold_models[0], tmp_path / "old", threshold=cv.threshold, train_summary={}, metrics={},
                      calibration_crops=x[:32])
    raw = json.loads((out / MANIFEST).read_text())
    assert "execution_paths" not in raw  # absent, not null: digests of older bundles still match
    b = load_bundle(out)
    assert b.manifest.execution_paths is None
    s = build_scorer(b, device="cpu")
    assert s.threshold == b.threshold and s.describe()["threshold_source"] == "bundle (fp32 CV)"


@pytest.mark.parametrize("edit, match", [
    (lambda r: r.update(interval=[0.9, 0.8]), "interval"),
    (lambda r: r["paths"].update(warp={"status": "ok"}), "'warp' is not a path"),
    (lambda r: r["paths"].update(bf16={"status": "ok"}), "roc_auc"),  # a legacy name is still validated
    (lambda r: r["paths"]["fold_cl"].update(threshold=float("1e9")), "threshold"),
    (lambda r: r["paths"]["fold_cl"]["roc_auc"].update(value=1.5), "roc_auc"),
    (lambda r: r.update(admissible=["eager", "jit"]), "'jit'"),
    (lambda r: r.update(surprise=1), "unknown key"),
])
def test_manifest_field_is_validated(record, edit, match):
    raw = json.loads(json.dumps(record.to_dict()))
    edit(raw)
    with pytest.raises(BundleError, match=match):
        m = BundleManifest(arch="shallow_cnn", hparams={}, input_shape=(64, 64), threshold=0.5,
                           files={"model.safetensors": "0" * 64}, execution_paths=ExecutionPaths.from_dict(raw, "m"))
        BundleManifest.from_json(m.signed().to_json())
