"""`auto` never picks a path the machine cannot run; explicit impossible requests are user errors.

Every test here states the machine it assumes (`Capabilities`, injected): none depends on the host CPU.
Paths that a host lacks the units for still run here (bf16 autocast is emulated on any x86 CPU); only
compiling is avoided (no test below compiles: the pre-guard or `inductor=False` stops it).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from cropray.errors import ConfigError, CroprayError
from cropray.fastpath import PATHS, Capabilities, build_scorer
from cropray.fastpath.policy import AUTO_ORDER, candidates

# A plain x86 machine without bf16/int8 units, CUDA, a C++ compiler or torchao.
BARE = Capabilities(cpu_capability="AVX2", avx512_bf16=False, amx_bf16=False, vnni=False, cuda=False,
                    cuda_bf16=False, inductor=False, torchao=False)
# AVX-512-BF16 units but no C++ compiler: bf16 runs eager only.
BF16_EAGER = dataclasses.replace(BARE, cpu_capability="AVX512", avx512_bf16=True)
# bf16 units and a compiler, no int8 (no VNNI, no torchao).
BF16_COMPILE = dataclasses.replace(BF16_EAGER, inductor=True)
# Everything a CPU can offer.
FULL = dataclasses.replace(BF16_COMPILE, amx_bf16=True, vnni=True, torchao=True, onnxruntime=True)


def test_auto_candidates_only_contain_runnable_paths():
    for caps in (BARE, BF16_EAGER, BF16_COMPILE, FULL):
        specs, skipped = candidates(caps, "cpu", "auto", "auto", has_calibration=True)
        assert specs, "fold_cl (fp32) must always be runnable"
        for s in specs:
            assert caps.can_run(s.precision, "cpu", s.compiled)[0]
        assert {s.name for s in specs} | {s["path"] for s in skipped} == set(AUTO_ORDER["cpu"])
    specs, skipped = candidates(BARE, "cpu", "auto", "auto", has_calibration=True)
    assert [s.name for s in specs] == ["fold_cl"]
    assert all(s["reason"] for s in skipped)
    assert [s.name for s in candidates(BF16_EAGER, "cpu", "auto", "auto", has_calibration=True)[0]] == \
        ["bf16", "fold_cl"]
    assert [s.name for s in candidates(FULL, "cpu", "auto", "auto", has_calibration=True)[0]] == \
        list(AUTO_ORDER["cpu"])


def test_auto_stays_fp32_without_calibration_crops():
    specs, skipped = candidates(FULL, "cpu", "auto", "auto", has_calibration=False)
    assert [s.name for s in specs] == ["onnx_fp32", "compile_fp32", "fold_cl"]
    assert {s["path"] for s in skipped} == {"onnx_int8", "int8", "bf16", "compile_bf16"}
    assert all("calibration" in s["reason"] for s in skipped)


def test_guard_bounds_the_flip_risk_by_the_margin_to_the_threshold():
    from cropray.fastpath.policy import guard

    ref = np.linspace(0.0, 1.0, 1000)  # scores spread evenly: 0.2% lie within 1e-3 of 0.5
    sharp = np.where(ref < 0.5, ref * 0.1, 0.9 + ref * 0.1)  # a confident model: nothing near 0.5
    bf16 = PATHS["bf16"]
    assert guard(bf16, sharp, sharp + 5e-4, 0.5)["ok"]
    g = guard(bf16, ref, ref + 5e-4, 0.5)  # same error, but ~2 crops within 2 x 5e-4 of the threshold
    assert not g["ok"] and g["at_risk"] > g["allowed"] == 1
    assert not guard(bf16, sharp, sharp + 0.2, 0.5)["ok"]  # beyond the bf16 tolerance


def test_auto_on_a_bare_machine_builds_fp32(trained_shallow, fixed_batch):
    s = build_scorer(trained_shallow.model, capabilities=BARE, calibration=trained_shallow.calibration_crops)
    d = s.describe()
    assert (d["path"], d["precision"], d["compiled"]) == ("fold_cl", "fp32", False)
    assert s(fixed_batch[:8]).shape == (8,)


def test_auto_without_compile_picks_a_runnable_eager_path(trained_shallow):
    s = build_scorer(trained_shallow.model, compile=False, threshold=trained_shallow.threshold,
                     calibration=trained_shallow.calibration_crops, capabilities=BF16_EAGER)
    d = s.describe()
    assert not d["compiled"] and d["path"] in ("bf16", "fold_cl")
    if d["path"] == "fold_cl":  # bf16 was rejected by the guard, or measured slower here (probe.py)
        assert any(f["path"] == "bf16" and "guard" in f["reason"] for f in d["fallbacks"]) or \
            d["probe"]["measured"]["bf16"] <= d["probe"]["measured"]["fold_cl"], d
    else:  # bf16 measured faster and passed its guard on the calibration crops
        assert d["guard"]["ok"] and d["fallbacks"] == [] and d["capabilities"]["avx512_bf16"]


@pytest.mark.parametrize("kw", [{"precision": "bf16"}, {"precision": "int8"}, {"device": "cuda"}])
def test_explicit_request_the_machine_cannot_run_is_a_config_error(trained_shallow, kw):
    with pytest.raises(ConfigError):
        build_scorer(trained_shallow.model, capabilities=BARE, **kw)


def test_unknown_precision_and_path_name_the_valid_ones(trained_shallow):
    with pytest.raises(ConfigError, match="fp32"):
        build_scorer(trained_shallow.model, precision="fp16", capabilities=FULL)
    with pytest.raises(ConfigError, match="fold_cl"):
        build_scorer(trained_shallow.model, path="turbo", capabilities=FULL)


class _Sawtooth(nn.Module):
    """score = frac(1e4 * conv response): any bf16 rounding of the conv (relative ~4e-3) moves every
    score by O(1), so the accuracy guard must reject bf16 (fp32 paths are not guarded)."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1))

    def forward(self, x):
        h = self.trunk(torch.log1p(x)).flatten(1).mean(1)  # (B,)
        return torch.remainder(1e4 * h, 1.0)


def test_accuracy_guard_rejects_a_path_that_flips_decisions(fixed_batch):
    crops = fixed_batch[:256]
    model = _Sawtooth().eval()
    s = build_scorer(model, compile=False, threshold=0.5, calibration=crops, capabilities=BF16_EAGER)
    d = s.describe()
    assert d["path"] == "fold_cl", d
    # the guard runs on the fastest candidate (probe.py): it rejected bf16, or bf16 measured slower here
    assert any(f["path"] == "bf16" and "guard" in f["reason"] for f in d["fallbacks"]) or \
        d["probe"]["measured"]["bf16"] <= d["probe"]["measured"]["fold_cl"], d


def test_every_named_path_is_in_the_policy_or_the_reference():
    ranked = set(AUTO_ORDER["cpu"]) | set(AUTO_ORDER["cuda"])
    assert set(PATHS) == ranked | {"eager"}


def test_compiled_reduced_precision_is_pre_guarded_before_compiling(fixed_batch):
    """A precision that fails uncompiled is never compiled (the compile would be 2-20 s wasted)."""
    crops = fixed_batch[:256]
    s = build_scorer(_Sawtooth().eval(), threshold=0.5, calibration=crops, expected_rows=1000,
                     capabilities=BF16_COMPILE)
    d = s.describe()
    assert d["path"] == "fold_cl" and d["compile_s"] is None, d  # nothing was compiled
    reasons = {f["path"]: f["reason"] for f in d["fallbacks"]}
    # compile_bf16: rejected by the uncompiled check, or not even that (its compile cannot pay on 1,000 rows)
    assert "pre-guard" in reasons.get("compile_bf16", "") or any(
        k["path"] == "compile_bf16" and "pays back" in k["reason"] for k in d["skipped"]), d
    assert "guard" in reasons.get("bf16", "") or d["probe"]["measured"]["bf16"] <= d["probe"]["measured"]["fold_cl"]
    assert any(k["path"] == "compile_fp32" and "pays back" in k["reason"] for k in d["skipped"])


def test_fp32_compile_only_when_the_rows_repay_it():
    from cropray.fastpath.policy import COMPILE_FP32_MIN_ROWS, drop_unpaid_compile

    specs = [PATHS[n] for n in ("compile_bf16", "compile_fp32", "fold_cl")]
    kept, skipped = drop_unpaid_compile(specs, "auto", 10_000)
    assert [s.name for s in kept] == ["compile_bf16", "fold_cl"]
    assert skipped[0]["path"] == "compile_fp32" and "10,000 rows" in skipped[0]["reason"]
    assert drop_unpaid_compile(specs, "auto", COMPILE_FP32_MIN_ROWS) == (specs, [])
    assert drop_unpaid_compile(specs, "auto", None) == (specs, [])  # unknown: as before
    assert drop_unpaid_compile(specs, True, 10) == (specs, [])  # an explicit --compile on is obeyed


def test_auto_keeps_a_model_without_conv_or_linear_layers_in_fp32(fixed_batch):
    from cropray.models import build_model

    s = build_scorer(build_model("dedoppler"), calibration=fixed_batch[:64], threshold=6.0, compile=False,
                     capabilities=BF16_EAGER)
    d = s.describe()
    assert d["precision"] == "fp32", d
    assert any("no conv/linear" in k["reason"] for k in d["skipped"])


class _FlatLinear(nn.Module):
    """Accepts only 64x64 crops: a linear layer over the flattened crop."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(64 * 64, 1)

    def forward(self, x):
        return torch.sigmoid(self.head(torch.log1p(x).flatten(1)))[:, 0]


@pytest.mark.parametrize("caps", [BARE, BF16_EAGER], ids=["bare", "bf16"])
def test_a_model_no_path_can_run_is_an_error_naming_each_path(caps):
    """Before: the path loop fell off its end (every path failed to build) and raised UnboundLocalError,
    or returned a runner the guard had rejected, labelled fold_cl."""
    with pytest.raises(CroprayError, match=r"no execution path can run this model \(fold_cl: RuntimeError") as e:
        build_scorer(_FlatLinear().eval(), input_shape=(32, 32), capabilities=caps)
    assert str(e.value).count("fold_cl:") == 1  # the last resort is not tried twice
    assert build_scorer(_FlatLinear().eval(), capabilities=caps, path="fold_cl")(np.ones((3, 1, 64, 64), np.float32)).shape == (3,)


def test_quality_record_keeps_only_admissible_paths_with_the_reason():
    # issue 12 lever 1: with a path-aware CV record, admissibility (CV ROC-AUC within the fp32 interval)
    # decides, not flips; int8 still needs calibration crops. The record's values here are data for the
    # rule under test (tests/fastpath/test_path_cv.py measures real ones).
    from cropray.fastpath.policy import admissible_only
    from cropray.fastpath.quality import ExecutionPaths, PathQuality, admissible_paths

    def q(auc, flips):
        return PathQuality("ok", roc_auc={"value": auc, "lo": None, "hi": None}, threshold=0.5, flips_vs_fp32=flips, n=100)

    paths = {"eager": q(0.95, 0), "fold_cl": q(0.95, 0), "bf16": q(0.94, 40), "int8": q(0.90, 3)}
    rec = ExecutionPaths(interval=(0.93, 0.97), paths=paths, admissible=admissible_paths((0.93, 0.97), paths))
    assert "bf16" in rec.admissible and "compile_bf16" in rec.admissible  # 40 flips, AUC within: admissible
    assert "int8" not in rec.admissible  # 3 flips, AUC below: not
    specs, _ = candidates(FULL, "cpu", "auto", "auto", has_calibration=True)
    kept, skipped = admissible_only(specs, rec, has_calibration=True)
    assert {s.name for s in kept} == {"onnx_fp32", "compile_bf16", "compile_fp32", "bf16", "fold_cl"}
    # onnx_int8 is not in this record (an older bundle's): never chosen unmeasured
    assert [(s["path"], "below the fp32 interval" in s["reason"], "not measured" in s["reason"]) for s in skipped] \
        == [("onnx_int8", False, True), ("int8", True, False)]
    rec8 = dataclasses.replace(rec, admissible=(*rec.admissible, "int8"))
    kept, skipped = admissible_only(specs, rec8, has_calibration=False)
    assert "int8" not in {s.name for s in kept}
    assert "calibration crops" in next(s["reason"] for s in skipped if s["path"] == "int8")
