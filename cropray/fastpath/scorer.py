"""`build_scorer`: a bundle (or a plain model) -> a checked scorer (np raw (B,1,H,W) -> np (B,)) on the
runtime `auto` picks for this device (policy.py), or the one asked for."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from cropray.errors import ConfigError, CroprayError
from cropray.fastpath import graph_cache, policy
from cropray.fastpath.isa import isa
from cropray.fastpath.ort import available as ort_available
from cropray.fastpath.physics import numpy_runtime
from cropray.fastpath.start import ort_scorer
from cropray.fastpath.torch_paths import TorchScorer, runner

DEFAULT_BATCH = 128  # ONNX Runtime and oneDNN peak at 64-256 crops per call here
ORT = ("onnx_int8", "onnx_fp32")


def _unpack(obj, threshold, calibration, input_shape):
    """(model, threshold, model_id, calibration np or None, (H, W), bundle or None)."""
    if isinstance(obj, nn.Module):
        model_id = getattr(obj, "arch_name", None) or type(obj).__name__
        return obj, threshold, model_id, calibration, tuple(input_shape), None
    calib = calibration if calibration is not None else getattr(obj, "calibration_crops", None)
    thr = obj.threshold if threshold is None else threshold
    return obj.model, thr, obj.model_id, calib, tuple(obj.input_shape or input_shape), obj


def fp32_pack(bundle, model, calib, shape, level: str):
    """(the fp32 GraphPack, where it came from): the bundle's own, else the cache's, else exported now
    (and cached for a bundle: keyed by its digest, onnxruntime's version and the ISA level)."""
    from cropray.fastpath.export import make_pack

    own = getattr(bundle, "graph_pack", None)
    if own is not None:
        return own, "bundle"
    if bundle is None:
        return make_pack(model, calib, shape), "exported"
    key = graph_cache.graph_key(bundle.bundle_sha256, "fp32", level)
    cached = graph_cache.load(key)
    if cached is not None:
        return cached, "cache"
    pack = make_pack(model, calib, shape)
    graph_cache.store(key, pack)
    return pack, "exported"


def build_scorer(bundle, path: str = "auto", device: str = "auto", threads: int | None = None, *,
                 precision: str = "auto", threshold: float | None = None, batch_size: int | None = None,
                 calibration: np.ndarray | None = None, input_shape=(64, 64), isa_level: str | None = None,
                 cuda: bool | None = None):
    """A scorer for a `cropray.bundle.Bundle` or a plain nn.Module (raw (B,1,H,W) -> (B,)).

    path: "auto" or a runtime of `specs.PATHS`; precision (`cropray score --precision`): "auto" | "fp32" |
    "int8" (CPU) | "bf16" (CUDA), used when path is "auto"; device "auto" | "cpu" | "cuda"; threads:
    intra-op threads (the actor's CPUs; None = torch's). calibration: (n,1,H,W) crops for int8 ranges and
    the agreement check when the bundle has none. isa_level / cuda: what to assume about this machine
    (default: read it; tests pass others). auto falls back (recorded in describe()["fallbacks"]) to the
    next candidate when one cannot be built or fails its check; an explicit runtime that cannot raises
    CroprayError; a request the device cannot run raises ConfigError.
    """
    t0 = time.perf_counter()
    has_cuda = torch.cuda.is_available() if cuda is None else bool(cuda)
    if device == "auto":
        device = "cuda" if has_cuda else "cpu"
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"--device {device!r} is not one of auto, cpu, cuda")
    if device == "cuda" and not has_cuda:
        raise ConfigError("--device cuda: CUDA is not available on this machine")
    if threads is not None:
        torch.set_num_threads(int(threads))
    threads = torch.get_num_threads()
    explicit_threshold = threshold is not None
    model, threshold, model_id, calib, shape, bnd = _unpack(bundle, threshold, calibration, input_shape)
    record = getattr(getattr(bnd, "manifest", None), "execution_paths", None)
    want = policy.resolve(path, precision, device)
    has_weights = any(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())
    ort_ok = ort_available()[0]
    names = policy.candidates(device, admissible=record and tuple(record.admissible), has_calibration=calib is not None,
                              has_weights=has_weights, ort=ort_ok, numpy_runtime=numpy_runtime()) \
        if want == "auto" else [want]
    if want == "onnx_int8" and calib is None:
        raise ConfigError("--precision int8 needs calibration crops for its int8 ranges: the bundle has none")
    level = isa_level or isa()
    batch = int(batch_size or DEFAULT_BATCH)
    fallbacks: list[dict] = []
    scorer = None
    if names[0] in ORT:
        try:
            pack, source = fp32_pack(bnd, model, calib, shape, level)
            scorer = ort_scorer(names, pack, calibration=calib, bundle_sha256=bnd and bnd.bundle_sha256,
                                level=level, threads=threads, batch=batch, fp32_source=source, fallbacks=fallbacks)
        except Exception as e:  # noqa: BLE001 - export failures fall back like a refused graph
            fallbacks.append({"path": names[0], "reason": f"{type(e).__name__}: {str(e)[:200]}"})
    rest = [n for n in names if n not in ORT]
    if scorer is None and want != "auto" and want in ORT:
        raise CroprayError(f"runtime {want} cannot run this model here ({fallbacks[-1]['reason']})")
    if scorer is None:
        scorer = _other(rest, model, device, batch, calib, shape, fallbacks, explicit=want != "auto")
    path_thr = None if explicit_threshold or record is None else record.threshold_for(scorer.describe()["path"])
    scorer.threshold = threshold if path_thr is None else path_thr
    scorer._info.update(model_id=model_id, auto=want == "auto", candidates=names, fallbacks=fallbacks,
                        threshold_source="explicit" if explicit_threshold else "path-aware CV" if path_thr is not None
                        else "bundle (fp32 CV)", admissible=record and list(record.admissible),
                        build_s=round(time.perf_counter() - t0, 3))
    return scorer


def _other(names: list[str], model, device: str, batch: int, calib, shape, fallbacks: list[dict], *, explicit: bool):
    """The first of the torch / numpy runtimes `names` that builds."""
    from cropray.bundle_graph import check_crops

    for name in names:
        try:
            if name == "numpy":
                from cropray.fastpath.physics import NumpyScorer

                return NumpyScorer(getattr(model, "arch_name", ""), model.hparams, batch=batch)
            fn, info = runner(model, name, device, torch.from_numpy(check_crops(calib, shape)))
            spec_prec = "bf16" if name == "cuda_amp" else "fp32"
            return TorchScorer(fn, device=device, batch=batch,
                               info={"path": name, "precision": spec_prec, "runtime": "torch", **info})
        except Exception as e:  # noqa: BLE001 - the next runtime, or the caller's error below
            if explicit:
                raise CroprayError(f"runtime {name} cannot run this model here: {type(e).__name__}: {e}") from None
            fallbacks.append({"path": name, "reason": f"{type(e).__name__}: {str(e)[:200]}"})
    reasons = "; ".join(f"{f['path']}: {f['reason']}" for f in fallbacks)
    raise CroprayError(f"no runtime can run this model ({reasons})")
