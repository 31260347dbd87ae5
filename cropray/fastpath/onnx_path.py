"""The `onnx_fp32` and `onnx_int8` execution paths: the bundle's network run by ONNX Runtime, our numpy
preprocessing in front.

Why: on the CPUs measured (PERF_NOTES, `cropray bench`) ONNX Runtime's fp32 convolutions reach ~0.9 of
the fp32 matmul peak where our best torch fp32 path reaches 0.55-0.60, and it needs no compile: the
session is built in ~0.1 s, so an actor scores its first rows as soon as the bundle is loaded.

The graph is built from the bundle's weights at load time (nothing new is stored in a bundle): the model is copied, its RobustNorm is moved out into the numpy copy the other
fast paths use (ONNX has no Median operator), and the rest -- conv trunk, head and the track prior's
Taylor tree -- is exported with `torch.onnx.export` into memory with a dynamic batch axis. Every build
is checked against the eager model on the example crops (the bundle's calibration crops when it has
them): more than `TOLERANCE["fp32"]` apart and the path is refused (the scorer falls back). The
exported bytes are kept next to the probe cache (`<cache>/onnx/<weights hash>.onnx`, its sha256 beside
it) so the next actor skips the 1-6 s export; a kept graph goes through the same check (and is
re-exported if its digest or the check fails). A scoring actor whose build chose this path also stores
a warm-start entry (graph_cache.py) that lets the next one score without importing torch at all.

`onnx_int8`: the same fp32 graph, statically quantized by ONNX Runtime's own quantizer
(`onnxruntime.quantization.quantize_static`, QDQ format, int8 weights per output channel, uint8
activations, min/max ranges from the bundle's calibration crops). Only the convolutions are quantized
(`INT8_OPS`): the track prior's Taylor tree, the pooling and the head stay fp32, so the physics term
is computed exactly as trained. Its quality is judged in cross-validation (path_cv.py: each fold's
model quantized with that fold's training crops), not by agreement with fp32; the build check here
only catches a broken graph (|d score| <= TOLERANCE["int8"]). Measured here (idle 2-vCPU EPYC, VNNI,
`cropray bench`): ~1.6x ONNX Runtime fp32 on the shallow CNN, no compile, ~1 s to quantize.

Threads: `intra_op_num_threads` = torch's thread count, which `build_scorer(threads=)` has set to the
actor's CPUs; spinning is off so that an idle session does not burn the CPU the Ray read tasks need.
"""

from __future__ import annotations

import copy
import importlib.util
import io
import time
import warnings

import numpy as np
import torch
from torch import nn

from cropray.fastpath.graph_cache import session  # noqa: F401  (re-exported: torch-free)
from cropray.fastpath.preprocess import is_robust_norm, split_preprocess
from cropray.fastpath.specs import TOLERANCE

INPUT, OUTPUT = "z", "score"
INT8_OPS = ("Conv",)  # quantized op types: the trunk's convolutions (module docstring)


def available() -> tuple[bool, str]:
    """(ok, reason): ONNX Runtime and the exporter's packages importable in this environment."""
    missing = [m for m in ("onnxruntime", "onnx") if importlib.util.find_spec(m) is None]
    if missing:
        return False, f"needs {' and '.join(missing)} (pip install 'cropray[fast]')"
    return True, ""


def export_network(net: nn.Module, example: torch.Tensor) -> bytes:
    """The network (normalised (B,1,H,W) -> (B,) score) as ONNX bytes, batch axis dynamic.

    The TorchScript-based exporter (dynamo=False) takes ~1 s here where the dynamo exporter takes
    5-10 s, and translates the Taylor tree's pad/reshape skew exactly (taylor.py avoids as_strided
    for this reason); the dynamo exporter is the fallback where the old one is gone.
    """
    buf = io.BytesIO()
    kw = dict(input_names=[INPUT], output_names=[OUTPUT], dynamic_axes={INPUT: {0: "b"}, OUTPUT: {0: "b"}})
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # deprecation notes of the exporter, not actionable here
        try:
            torch.onnx.export(net, (example,), buf, dynamo=False, **kw)
        except TypeError:  # a torch without the legacy exporter
            buf = io.BytesIO()
            torch.onnx.export(net, (example,), buf, dynamo=True, **kw)
    return buf.getvalue()


class OrtNet:
    """torch (B,1,H,W) float32 normalised crops -> torch (B,) float32, through an ORT session."""

    def __init__(self, sess):
        self.sess = sess

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        zn = np.ascontiguousarray(z.detach().cpu().numpy(), dtype=np.float32)  # zero-copy when contiguous
        out = self.sess.run(None, {INPUT: zn})[0]  # (B,)
        return torch.from_numpy(np.asarray(out, dtype=np.float32).reshape(-1))


def _graph_file(model: nn.Module, z: torch.Tensor, tag: str = "fp32"):
    """Where this model's exported graph is kept: the probe cache's folder, keyed by weights + torch
    (+ for int8 the quantizer's version and a digest of the calibration crops: `tag`)."""
    import hashlib

    from cropray.fastpath import probe

    key = hashlib.sha256(f"{probe.model_hash(model)}|{torch.__version__}|{tuple(z.shape[1:])}|{tag}".encode())
    return probe.cache_path().parent / "onnx" / f"{key.hexdigest()[:24]}.onnx"


def _int8_tag(z_calib: np.ndarray) -> str:
    import hashlib

    import onnxruntime

    return f"int8|{onnxruntime.__version__}|{INT8_OPS}|{hashlib.sha256(z_calib.tobytes()).hexdigest()[:16]}"


def quantize_graph(graph: bytes, z_calib: np.ndarray) -> bytes:
    """The fp32 graph statically quantized to int8 (QDQ) by ONNX Runtime on normalised crops
    z_calib (n, 1, H, W) float32: per-channel int8 weights, uint8 activations, min/max ranges."""
    import os
    import tempfile

    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{INPUT: z_calib[i:i + 32]} for i in range(0, len(z_calib), 32)])

        def get_next(self):
            return next(self.it, None)

    with tempfile.TemporaryDirectory(prefix="cropray-int8-") as tmp:
        src, dst = os.path.join(tmp, "fp32.onnx"), os.path.join(tmp, "int8.onnx")
        with open(src, "wb") as f:
            f.write(graph)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_static(src, dst, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            op_types_to_quantize=list(INT8_OPS), calibrate_method=CalibrationMethod.MinMax)
        with open(dst, "rb") as f:
            return f.read()


class OrtPipeline:
    """raw (B,1,H,W) torch -> (B,) torch: `pre` (numpy RobustNorm or identity), then the ORT network.
    Keeps the graph bytes and the preprocessing config: what a warm start (graph_cache.py) stores."""

    def __init__(self, pre, ort_net: OrtNet, graph: bytes, shape: tuple[int, int]):
        from cropray.fastpath.preprocess import _stride

        self.pre, self.ort_net, self.graph = pre, ort_net, graph
        cfg = getattr(pre, "cfg", None)  # NumpyRobustNorm's config; None: preprocessing is in the graph
        # + the model's pixel subsampling for (H, W): robust_numpy computes it without cropray.models
        self.preprocess_cfg = None if cfg is None else {**cfg, "stride": _stride(shape[0] * shape[1], shape[1])}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.ort_net(self.pre(x))


def _graph(model: nn.Module, net: nn.Module, z: torch.Tensor, z_calib: np.ndarray | None = None) -> tuple[bytes, bool]:
    """(ONNX bytes, from the cache?). Exporting costs 1-6 s per actor on 2 shared cores, so the graph of
    a model this machine exported before is read back, its sha256 checked against the one written
    beside it (a damaged or truncated file is exported afresh); it is data (a protobuf graph, no
    code) and the eager check below refuses it exactly as a fresh export if it does not reproduce
    the model."""
    import hashlib

    f = _graph_file(model, z, "fp32" if z_calib is None else _int8_tag(z_calib))
    try:
        data = f.read_bytes()
        if f.with_suffix(".sha256").read_text().strip() == hashlib.sha256(data).hexdigest():
            return data, True
        f.unlink(missing_ok=True)
    except OSError:
        pass
    graph = export_network(net, z)
    return (graph if z_calib is None else quantize_graph(graph, z_calib)), False


def _store(model: nn.Module, z: torch.Tensor, graph: bytes, tag: str = "fp32") -> None:
    import hashlib
    import os
    import tempfile

    f = _graph_file(model, z, tag)
    try:
        f.parent.mkdir(parents=True, exist_ok=True)
        for target, data in ((f, graph), (f.with_suffix(".sha256"), hashlib.sha256(graph).hexdigest().encode())):
            fd, tmp = tempfile.mkstemp(dir=f.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, target)  # atomic: a concurrent actor reads the old file or the whole new one
    except OSError:
        pass  # a read-only cache costs the next actor an export, nothing else


def build(model: nn.Module, example: torch.Tensor, *, threads: int, precision: str = "fp32",
          calibration: torch.Tensor | None = None) -> tuple[callable, dict]:
    """(fn raw (B,1,H,W) -> (B,), info) for `model`; RuntimeError when it cannot be built or disagrees.

    example: (B,1,H,W) raw crops for the export trace and the check against eager fp32.
    precision "int8": quantized on `calibration` (n,1,H,W raw crops: the bundle's calibration crops).
    """
    ok, why = available()
    if not ok:
        raise RuntimeError(why)
    if precision not in ("fp32", "int8"):
        raise RuntimeError(f"the ONNX Runtime path runs fp32 or int8, not {precision}")
    if precision == "int8" and (calibration is None or len(calibration) == 0):
        raise RuntimeError("onnx_int8 needs calibration crops for its int8 ranges")
    t0 = time.perf_counter()
    net = copy.deepcopy(model).eval()
    pre, how = split_preprocess(net, example)  # numpy RobustNorm in front; None: export the whole model
    if pre is None and is_robust_norm(getattr(net, "preprocess", None) or nn.Identity()):
        raise RuntimeError(f"preprocessing cannot leave the graph ({how}); ONNX has no Median operator")
    pre = pre or nn.Identity()
    with torch.no_grad():
        z = pre(example)  # (B,1,H,W) normalised
        z_calib = None if precision == "fp32" else np.ascontiguousarray(pre(calibration).numpy(), np.float32)
    tag = "fp32" if z_calib is None else _int8_tag(z_calib)
    graph, cached = _graph(model, net, z[:8], z_calib)
    ort_net = OrtNet(session(graph, threads))
    build_s = time.perf_counter() - t0
    with torch.inference_mode():
        ref = model(example).float()  # the model as trained, fp32 eager
    got = ort_net(z)
    err = float((got - ref).abs().max()) if got.shape == ref.shape else float("inf")
    tol = TOLERANCE[precision]
    if not err <= tol and cached:  # a stale or damaged cached graph: export afresh
        _graph_file(model, z, tag).unlink(missing_ok=True)
        return build(model, example, threads=threads, precision=precision, calibration=calibration)
    if not err <= tol:  # also catches NaN
        raise RuntimeError(f"ONNX {precision} graph disagrees with the eager model by {err:.3g} > {tol}")
    if not cached:
        _store(model, z, graph, tag)
    info = {"bn_folded": 0, "bn_left": 0, "channels_last": False, "preprocess": how,
            "runtime": "onnxruntime", "export_s": round(build_s, 3), "graph_cached": cached, "check_max_abs_diff": err,
            "ort_threads": max(1, int(threads))}
    if precision == "int8":
        info.update(quantized_ops=list(INT8_OPS), calibration_crops=int(len(z_calib)))
    return OrtPipeline(pre, ort_net, graph, tuple(example.shape[-2:])), info
