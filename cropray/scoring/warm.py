"""A scoring actor's torch-free start: the bundle's verified files -> a checked CPU scorer, or None.

When the request runs on CPU and auto (or --precision) picks an ONNX Runtime runtime, the fp32 graph
comes from the bundle itself (exported at training time) or, for an older bundle, from the graph cache
(exported by an earlier actor on this machine); int8 from the cache or quantized from the fp32 one
(cropray.fastpath.start). The label-free `dedoppler` runs on the numpy runtime. Every one is checked
against the eager scores its pack carries. None means the actor does the full build (torch, the model,
cropray.fastpath.build_scorer): a GPU, a torch runtime, or an old bundle seen for the first time.
"""

from __future__ import annotations

import io

import numpy as np

from cropray.bundle_graph import GraphError, GraphPack
from cropray.bundle_manifest import CALIBRATION_FILE, BundleManifest
from cropray.fastpath import graph_cache, policy
from cropray.fastpath.isa import isa
from cropray.fastpath.ort import available as ort_available
from cropray.fastpath.physics import NumpyScorer, numpy_runtime
from cropray.fastpath.start import ort_scorer

LABEL_FREE = ("dedoppler",)  # architectures without conv/linear layers (the numpy runtime's)


def calibration(blobs: dict[str, bytes]) -> np.ndarray | None:
    """(n,1,H,W) float32 calibration crops of a verified bundle, read without torch."""
    if CALIBRATION_FILE not in blobs:
        return None
    from safetensors.numpy import load

    crops = load(io.BytesIO(blobs[CALIBRATION_FILE]).getvalue()).get("crops")
    return None if crops is None else np.ascontiguousarray(crops, np.float32)


def fast_start(manifest: BundleManifest, blobs: dict[str, bytes], *, precision: str, device: str,
               threads: int | None, batch: int, level: str | None = None) -> tuple[object | None, dict]:
    """(scorer or None, report): see the module docstring. `level`: the CPU's ISA (default: read it)."""
    report: dict = {"used": False}
    if device != "cpu":
        return None, {**report, "reason": f"device {device}: torch runtime"}
    want = policy.resolve("auto", precision, "cpu")
    has_weights = manifest.arch not in LABEL_FREE
    calib = calibration(blobs)
    rec = manifest.execution_paths
    names = policy.candidates("cpu", admissible=rec and tuple(rec.admissible), has_calibration=calib is not None,
                              has_weights=has_weights, ort=ort_available()[0], numpy_runtime=numpy_runtime()) \
        if want == "auto" else [want]
    if names[0] == "onnx_int8" and calib is None:
        return None, {**report, "reason": "int8 without calibration crops: the full build says why"}
    threads = max(1, int(threads or 1))
    if names[0] == "numpy":
        s = NumpyScorer(manifest.arch, manifest.hparams, batch=batch, threads=threads)
    elif names[0] in ("onnx_int8", "onnx_fp32"):
        level = level or isa()
        try:
            pack, source = GraphPack.from_files(blobs, "bundle"), "bundle"
        except GraphError:
            pack, source = graph_cache.load(graph_cache.graph_key(manifest.bundle_sha256, "fp32", level)), "cache"
        if pack is None:
            return None, {**report, "reason": "no exported graph in the bundle or the cache: full build"}
        fallbacks: list[dict] = []
        s = ort_scorer(names, pack, calibration=calib, bundle_sha256=manifest.bundle_sha256, level=level,
                       threads=threads, batch=batch, fp32_source=source, fallbacks=fallbacks)
        if s is None:
            return None, {**report, "reason": "no ONNX Runtime runtime passed its check", "fallbacks": fallbacks}
        s._info["fallbacks"] = fallbacks
    else:
        return None, {**report, "reason": f"{names[0]}: a torch runtime"}
    path = s.describe()["path"]
    thr = rec.threshold_for(path) if rec is not None else None
    s.threshold = manifest.threshold if thr is None else thr
    s._info.update(model_id=manifest.model_id, candidates=names,
                   threshold_source="path-aware CV" if thr is not None else "bundle (fp32 CV)")
    return s, {"used": True, "reason": "torch-free start", "path": path}
