"""`auto` decides by measuring on this machine (probe.py): the fastest accepted path, cached, compile charged."""

from __future__ import annotations

import importlib.util
import json
import time

import pytest
import torch

from cropray.fastpath import Capabilities, build_scorer, probe
from cropray.models import build_model

# bf16 units (runs eager), ONNX Runtime when installed, no C++ compiler: nothing here compiles.
EAGER_ONLY = Capabilities(cpu_capability="AVX512", avx512_bf16=True, amx_bf16=False, vnni=False, cuda=False,
                          cuda_bf16=False, inductor=False, torchao=False,
                          onnxruntime=importlib.util.find_spec("onnxruntime") is not None)


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CROPRAY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CROPRAY_PROBE", raising=False)
    return tmp_path / "cache"


def test_round_robin_timing_orders_runners_by_speed():
    x = torch.zeros(4, 1, 8, 8)

    def slow(_):
        time.sleep(0.02)

    def fast(_):
        time.sleep(0.002)

    t0 = time.perf_counter()
    rates = probe.time_runners({"slow": slow, "fast": fast}, x)
    assert time.perf_counter() - t0 < 2.0  # a sub-second probe per path (+ one warm call)
    assert rates["fast"] > 3 * rates["slow"] and 100 < rates["slow"] < 250  # 4 crops / ~20 ms


def test_auto_builds_the_measured_fastest_path_and_caches_it(trained_shallow, cache_dir):
    tm = trained_shallow
    kw = dict(threshold=tm.threshold, calibration=tm.calibration_crops, capabilities=EAGER_ONLY, batch_size=64,
              expected_rows=5_000)
    d = build_scorer(tm.model, **kw).describe()
    p = d["probe"]
    assert p and not p["cache_hit"] and p["chosen"] == d["path"], d
    accepted = p["measured"]
    assert "fold_cl" in accepted and d["path"] == max(accepted, key=accepted.get)
    rejected = {f["path"] for f in d["fallbacks"]}
    assert set(accepted) | rejected >= {"fold_cl", "bf16"} and not set(accepted) & rejected
    data = json.loads((cache_dir / "probe.json").read_text())
    (entry,) = data.values()
    assert set(entry["paths"]) == set(accepted) | rejected
    # The next scorer on this machine and bundle measures nothing and builds the cached winner.
    d2 = build_scorer(tm.model, **kw).describe()
    assert d2["probe"]["cache_hit"] and d2["probe"]["measured"] == {} and d2["path"] == d["path"]


def test_other_weights_or_threads_are_another_cache_entry(trained_shallow):
    m = trained_shallow.model
    k = probe.cache_key(m, device="cpu", batch=64)
    assert k == probe.cache_key(m, device="cpu", batch=64)
    assert k != probe.cache_key(m, device="cpu", batch=128)
    torch.manual_seed(1)
    other = build_model("shallow_cnn", **m.hparams).eval()  # same architecture, other weights
    assert probe.cache_key(other, device="cpu", batch=64) != k


def test_a_damaged_cache_is_a_cold_cache(cache_dir):
    cache_dir.mkdir(parents=True)
    (cache_dir / "probe.json").write_text("{not json")
    assert probe.load_entry("k") == {}
    probe.save_entry("k", {"fold_cl": {"crops_per_s": 100.0}})  # rewritten whole, atomically
    assert probe.load_entry("k") == {"fold_cl": {"crops_per_s": 100.0}}


class _Chooser:
    """Only what _compile_if_it_pays reads of scorer._Chooser when nothing is guarded."""

    guarded = False

    def __init__(self):
        self.tried = []

    def _try(self, spec):
        self.tried.append(spec.name)
        return None  # a compile that fails: nothing is built


def test_a_compile_is_charged_against_the_rows():
    from cropray.fastpath import PATHS

    c = _Chooser()
    report = {"skipped_compiles": []}
    # 1,000 crops/s uncompiled; a compile measured before here: 2,000 crops/s after 20 s.
    cached = {"compile_fp32": {"crops_per_s": 2000.0, "compile_s": 20.0}}
    assert probe._compile_if_it_pays(c, [PATHS["compile_fp32"]], cached, 1000.0, 30_000, report) is None
    assert c.tried == [] and "pays back only from ~40,000" in report["skipped_compiles"][0]["reason"]
    probe._compile_if_it_pays(c, [PATHS["compile_fp32"]], cached, 1000.0, 50_000, report)
    assert c.tried == ["compile_fp32"]  # 50 s uncompiled vs 45 s compiled: worth it
    slower = {"compile_fp32": {"crops_per_s": 900.0, "compile_s": 1.0}}
    report = {"skipped_compiles": []}
    probe._compile_if_it_pays(c, [PATHS["compile_fp32"]], slower, 1000.0, 10**9, report)
    assert c.tried == ["compile_fp32"] and "not faster" in report["skipped_compiles"][0]["reason"]


def test_probing_off_keeps_the_candidates_order(trained_shallow, cache_dir, monkeypatch):
    monkeypatch.setenv("CROPRAY_PROBE", "0")
    d = build_scorer(trained_shallow.model, compile=False, capabilities=EAGER_ONLY).describe()
    assert d["probe"] is None and not (cache_dir / "probe.json").exists()
