"""A scoring actor's warm start: reuse (or store) the result of a full fast-path build (torch-free).

`WarmStart(bundle_sha256, ...)` names the entry (cropray.fastpath.graph_cache: key, format, checks).
`.scorer(expected_rows)` returns a `graph_cache.WarmScorer` when an entry exists, passes its digests
and its check, and no compile could pay back on `expected_rows` rows; else None (the actor then does
the full build: torch, the model, cropray.fastpath.build_scorer). `.store(bundle, scorer)` after a full
build whose winner is an ONNX Runtime path (`onnx_fp32`, `onnx_int8`) writes the entry for the next actor. `.report` says what happened
(it goes into the actor's describe() and the start-up trace).

Which rows a stored choice holds for: the full build's probe (fastpath/probe.py) skipped each compiled
candidate because its compile would not pay back on the rows it was charged. The entry records
`max_rows`, the fewest rows at which one of them would pay by the probe's own rule, and an actor
expecting that many rows or more builds fully (and may compile) instead of reusing the choice.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os

import numpy as np

from cropray.fastpath import graph_cache

ASSUMED_ROWS = 100_000  # = fastpath.probe.ASSUMED_ROWS (probe.py imports torch): rows charged when unknown
# describe() fields worth keeping in an entry (the probe's report and capabilities are re-measured anyway)
INFO_KEYS = ("path", "precision", "compiled", "channels_last", "bn_folded", "bn_left", "preprocess", "device",
             "batch", "runtime", "export_s", "graph_cached", "skipped", "fallbacks", "model_id", "threshold_source",
             "admissible")


class WarmStart:
    def __init__(self, bundle_sha256: str, *, precision: str, compile_, device: str, threads: int | None,
                 batch: int):
        self.threads, self.batch = threads, int(batch)
        why = _ineligible(precision, compile_, device, threads)
        self.key = None if why else graph_cache.warm_key(bundle_sha256, threads=threads, batch=batch, device=device,
                                                          precision=precision, compile_=compile_)
        self.report: dict = {"used": False, "reason": why or "not looked up", "key": self.key}

    def scorer(self, expected_rows: int | None):
        """A checked WarmScorer, or None (`report["reason"]` says why)."""
        if self.key is None:
            return None
        entry, why = graph_cache.load(self.key)
        if entry is None:
            self.report["reason"] = f"no entry ({why})"
            return None
        rows = int(expected_rows) if expected_rows else ASSUMED_ROWS
        if rows >= entry.max_rows:
            self.report["reason"] = (f"~{rows:,} rows: a compile may pay back from ~{entry.max_rows:,.0f}, "
                                     "so the probe decides again")
            return None
        try:
            ws = graph_cache.WarmScorer(entry, threads=self.threads)
        except Exception as e:  # noqa: BLE001 - a mismatch or an ORT that cannot load it: rebuild, rewrite
            graph_cache.drop(self.key)
            self.report["reason"] = f"entry refused ({type(e).__name__}: {str(e)[:200]}): deleted, full build"
            return None
        self.report.update(used=True, reason="hit", check_max_abs_diff=ws.check_max_abs_diff, build_s=ws.build_s)
        return ws

    def store(self, bundle, scorer) -> None:
        """After a full build: write the entry when the build chose an ONNX Runtime path on CPU by a probe."""
        if self.key is None:
            return
        info = scorer.describe()
        pipe = scorer.ort_pipeline()
        if pipe is None or info.get("device") != "cpu":
            self.report["stored"] = f"no ({info.get('path')}: only {' and '.join(graph_cache.SERVED)} run without torch)"
            return
        max_rows = compile_pays_from(info.get("probe"))
        if max_rows is not None and max_rows <= 0:
            self.report["stored"] = "no (no probe figure for the chosen path)"
            return
        check_x = _check_crops(bundle)
        ref, got = _eager_and_path(bundle.model, scorer, check_x)
        err = float(np.max(np.abs(ref - got)))
        int8 = info.get("path") == "onnx_int8"
        if not err <= graph_cache.TOLERANCE["int8" if int8 else "fp32"]:
            self.report["stored"] = f"no (path differs from eager by {err:.3g} on the check crops)"
            return
        if int8:  # the reuse check reproduces the quantized graph's own scores (graph_cache docstring)
            ref = got
        meta = json.loads(json.dumps({
            "path": info.get("path"), "batch": int(info.get("batch") or self.batch),
            "threshold": float(scorer.threshold if scorer.threshold is not None else bundle.threshold),
            "preprocess_cfg": pipe.preprocess_cfg, "max_rows": None if max_rows is None else round(max_rows),
            "info": {k: info.get(k) for k in INFO_KEYS}}, default=str))
        where = graph_cache.store(self.key, graph=pipe.graph, check_x=check_x, check_ref=ref, meta=meta)
        self.report["stored"] = str(where) if where else "no (cache not writable, or another actor's entry landed first)"


def _ineligible(precision: str, compile_, device: str, threads: int | None) -> str | None:
    if device != "cpu":
        return f"device {device!r}: warm start is a CPU ONNX Runtime path"
    if precision not in ("auto", "fp32", "int8") or compile_ not in ("auto", False):
        return f"--precision {precision} --compile {compile_}: not a request an ONNX Runtime path answers"
    if threads is None:
        return "thread count unknown"
    if importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime not installed"
    if os.environ.get("CROPRAY_PROBE", "1").lower() in ("0", "false", "off"):
        return "CROPRAY_PROBE=0: the choice is not measured, so not stored"
    return None


def compile_pays_from(report: dict | None) -> float | None:
    """The fewest rows at which a compiled candidate the probe skipped would pay back, by probe.py's rule
    (`compile_s + rows / rate < rows / best`); None = never (no probe ran: there was no choice),
    0 = unknown (do not store)."""
    if report is None:
        return None
    from cropray.fastpath import probe
    from cropray.fastpath.specs import PATHS

    cached = report.get("cached") or {}
    measured = report.get("measured") or {}
    rates = {**{k: v["crops_per_s"] for k, v in cached.items() if "crops_per_s" in v}, **measured}
    best = rates.get(report.get("chosen"))
    if not best:
        return 0.0
    lo = math.inf
    for sc in report.get("skipped_compiles") or []:
        spec = PATHS.get(sc.get("path"))
        if spec is None or not spec.compiled:
            continue
        c = cached.get(spec.name) or {}
        rate = float(measured.get(spec.name) or c.get("crops_per_s") or probe.EXPLORE_GAIN[spec.precision] * best)
        cost = float(c.get("compile_s") or probe.EXPLORE_COMPILE_S[spec.precision])
        if rate > best:
            lo = min(lo, cost / (1 / best - 1 / rate))
    return None if lo == math.inf else lo


def _check_crops(bundle) -> np.ndarray:
    """(K,1,H,W) float32: the bundle's first calibration crops, else seeded noise of its input shape."""
    k = graph_cache.CHECK_CROPS
    calib = getattr(bundle, "calibration_crops", None)
    if calib is not None and len(calib):
        return np.ascontiguousarray(calib[:k], dtype=np.float32)
    h, w = bundle.input_shape
    return np.random.default_rng(0).exponential(size=(k, 1, h, w)).astype(np.float32)  # chi2(2)/2 noise


def _eager_and_path(model, scorer, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fp32 eager scores, the chosen path's scores) of x: (K,) float32 each."""
    import torch

    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).float().numpy().reshape(-1)
    return ref, scorer(x)
