"""Path-aware CV (issue 12 lever 1): each path's own out-of-fold AUC, admissibility, per-path threshold.

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
from cropray.errors import BundleError
from cropray.fastpath import TOLERANCE, build_scorer, detect
from cropray.fastpath.path_cv import path_aware_cv
from cropray.fastpath.quality import ExecutionPaths
from cropray.synth import SynthConfig, generate
from cropray.train.config import TrainConfig
from cropray.train.cv import cross_validate

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
    paths = ("fold_cl", "bf16", *(() if detect().torchao else ("int8",)))  # int8: cheap 'failed' without torchao
    return path_aware_cv(cv, x, y, paths=paths, n_boot=200, seed=0)


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
    ref, fold, bf = record.paths["eager"], record.paths["fold_cl"], record.paths["bf16"]
    assert ref.threshold == cv.threshold and ref.n == len(y) == fold.n
    lo, hi = record.interval
    assert 0.5 < lo <= ref.auc <= hi <= 1.0 and (lo, hi) == (ref.roc_auc["lo"], ref.roc_auc["hi"])
    # fp32 folded: the same maths as the fold models (other kernels), so the same ranking and decisions
    assert fold.status == "ok" and fold.max_abs_diff <= TOLERANCE["fp32"] and fold.flips_vs_fp32 == 0
    assert fold.auc == pytest.approx(ref.auc, abs=1e-9) and fold.threshold == pytest.approx(cv.threshold, abs=1e-3)
    assert bf.status == "ok" and 0 < bf.max_abs_diff <= TOLERANCE["bf16"] and bf.threshold is not None
    assert {"value", "lo", "hi"} == set(bf.recall_at_1pct_fpr) and bf.roc_auc["lo"] is not None
    # admissible = measured (or stood for by a measured twin) with CV AUC >= the fp32 interval's lo
    assert {"eager", "fold_cl", "compile_fp32", "onnx_fp32"} <= set(record.admissible)
    assert (("bf16" in record.admissible) == ("compile_bf16" in record.admissible) == (bf.auc >= lo))
    if "int8" in record.paths and record.paths["int8"].status == "failed":
        assert "torchao" in record.paths["int8"].reason and "int8" not in record.admissible
    assert ExecutionPaths.from_dict(json.loads(json.dumps(record.to_dict())), "m") == record


def test_a_damaged_path_is_not_admissible(tiny_cv, record):
    cv, x, y = tiny_cv
    bad = path_aware_cv(_damaged(cv), x, y, paths=("bf16",), n_boot=200, seed=0)
    q = bad.paths["bf16"]
    assert q.status == "ok" and q.auc < bad.interval[0] and bad.interval == record.interval  # same fp32 reference
    assert "bf16" not in bad.admissible and "compile_bf16" not in bad.admissible
    assert "below the fp32 interval" in bad.why_not("compile_bf16")
    # a manifest claiming it admissible anyway is refused on load (values a digest cannot vouch for)
    raw = bad.to_dict()
    raw["admissible"] = [*raw["admissible"], "bf16"]
    with pytest.raises(BundleError, match="admissible lists 'bf16'.*below the fp32 interval"):
        ExecutionPaths.from_dict(raw, "manifest.json")


def test_onnx_int8_is_measured_with_calibration_from_the_training_part(tiny_cv):
    """ORT's int8 (a core dependency, no torchao): each fold's graph quantized on that fold's training
    crops only; its own out-of-fold AUC and threshold; admissible exactly when its AUC reaches fp32's lo."""
    cv, x, y = tiny_cv
    seen = []

    def calib(i, tr):
        seen.append((i, set(tr.tolist())))
        return x[tr][:64]

    rec = path_aware_cv(cv, x, y, paths=("onnx_int8",), n_boot=200, seed=0, calibration_of=calib)
    q = rec.paths["onnx_int8"]
    assert q.status == "ok", q.reason
    assert 0 < q.max_abs_diff <= TOLERANCE["int8"] and q.threshold is not None and q.n == len(y)
    assert len(seen) == cv.k
    for i, tr in seen:
        assert not tr & set(np.flatnonzero(cv.fold == i).tolist())
    assert ("onnx_int8" in rec.admissible) == (q.auc >= rec.interval[0])


@pytest.mark.skipif(not detect().torchao, reason="int8 PT2E needs torchao (cropray[bench])")
def test_int8_is_measured_with_calibration_from_the_training_part(tiny_cv):
    cv, x, y = tiny_cv
    seen = []

    def calib(i, tr):  # record which crops calibrate fold i: never its held-out ones
        seen.append((i, set(tr.tolist())))
        return x[tr]

    rec = path_aware_cv(cv, x, y, paths=("int8",), n_boot=0, calibration_of=calib)
    assert rec.paths["int8"].status == "ok" and rec.paths["int8"].max_abs_diff <= TOLERANCE["int8"]
    for i, tr in seen:
        assert not tr & set(np.flatnonzero(cv.fold == i).tolist())


def test_bundle_records_it_and_the_scorer_applies_the_path_threshold(tmp_path, tiny_cv, record):
    cv, x, _ = tiny_cv
    model = cv.fold_models[0]
    out = save_bundle(model, tmp_path / "b", threshold=cv.threshold, train_summary={}, metrics={},
                      calibration_crops=x[:32], execution_paths=record)
    b = load_bundle(out)
    assert b.manifest.execution_paths == record
    s = build_scorer(b, expected_rows=1000)  # auto: by speed among the admissible paths, no flip guard
    d = s.describe()
    assert d["path"] in record.admissible and d["guard"] is None
    assert s.threshold == record.threshold_for(d["path"]) and d["threshold_source"].startswith("quality record")
    skipped = {k["path"]: k["reason"] for k in d["skipped"]}
    if "bf16" in skipped and record.paths["bf16"].status == "ok" and "bf16" not in record.admissible:
        assert "below the fp32 interval" in skipped["bf16"]
    # an explicit path gets that path's own threshold; an explicit threshold wins over both
    assert build_scorer(b, path="bf16").threshold == record.threshold_for("bf16")
    assert build_scorer(b, path="fold_cl", threshold=0.25).threshold == 0.25
    # ScoreBatch decides is_signal at the scorer's threshold
    from cropray.archive.spec import CropSpec
    from cropray.scoring.scorer import ScoreBatch

    sb = ScoreBatch(str(out), CropSpec((64, 64), np.dtype("float32"), "list"), threads=1, expected_rows=100)
    assert sb.threshold == record.threshold_for(sb.path)


def test_a_bundle_without_the_record_loads_and_behaves_as_before(tmp_path, tiny_cv):
    cv, x, _ = tiny_cv
    out = save_bundle(cv.fold_models[0], tmp_path / "old", threshold=cv.threshold, train_summary={}, metrics={},
                      calibration_crops=x[:32])
    raw = json.loads((out / MANIFEST).read_text())
    assert "execution_paths" not in raw  # absent, not null: digests of older bundles still match
    b = load_bundle(out)
    assert b.manifest.execution_paths is None
    s = build_scorer(b, expected_rows=1000)
    assert s.threshold == b.threshold and s.describe()["threshold_source"] == "bundle (fp32 CV)"


@pytest.mark.parametrize("edit, match", [
    (lambda r: r.update(interval=[0.9, 0.8]), "interval"),
    (lambda r: r["paths"].update(warp={"status": "ok"}), "'warp' is not a path"),
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
