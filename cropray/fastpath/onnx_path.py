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
activations, min/max ranges from the bundle's calibration crops). The nodes inside the network's
modules are quantized (the exporter names them by module scope: `/features/...`, `/stages/...`,
`/encoder/...`, `/head/...`), except the track prior's (`/track/...`: the Taylor tree, ~90% of the
graph's nodes) and the top-level nodes that turn the trunk's output into the score (logit + prior,
sigmoid; the Siamese L2 norm, gallery matmul and top-k): the physics term and the score stay fp32
(a uint8 sigmoid would have 256 levels), while the conv trunk runs int8 from end to end (convolution
-> ReLU -> max-pool without dequantizing in between). Where the exporter names no module scope
(another exporter), only the convolutions are quantized (`INT8_OPS`), at a lower gain. Its quality is judged in cross-validation (path_cv.py: each fold's
model quantized with that fold's training crops), not by agreement with fp32; the build check here
only catches a broken graph (|d score| <= TOLERANCE["int8"]). Measured here (idle 2-vCPU EPYC, VNNI,
batch 128, shallow CNN, prior nodes fp32): 1.69x ONNX Runtime fp32 on one thread, 1.38x on two (conv-only:
1.50x / 1.09x; everything including the prior: 1.88x / 1.45x but |d score| 0.12), ~1 s to quantize.

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
INT8_OPS = ("Conv",)  # fallback quantized op types where the prior's nodes cannot be told (module docstring)
PRIOR_SCOPE = "/track"  # the TrackPrior module's attribute name (models/track_prior.py) as exported scope


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

    return (f"int8|{onnxruntime.__version__}|{PRIOR_SCOPE}|{INT8_OPS}|"
            f"{hashlib.sha256(z_calib.tobytes()).hexdigest()[:16]}")


def int8_plan(graph: bytes, has_prior: bool) -> dict:
    """quantize_static's node selection: the nodes inside the network's module scopes except the track
    prior's, or the convolutions only when the graph names no module scope (module docstring)."""
    import onnx

    nodes = [n.name for n in onnx.load_from_string(graph).graph.node]
    prior = [n for n in nodes if n.startswith(PRIOR_SCOPE + "/")]
    top = [n for n in nodes if n.count("/") < 2]  # "/Add", "/Sigmoid": the score's own arithmetic
    trunk = len(nodes) - len(prior) - len(top)
    if trunk and (prior or not has_prior):
        return {"nodes_to_exclude": prior + top,
                "scheme": f"{trunk} trunk/head nodes int8; the track prior's {len(prior)} and the score's "
                          f"{len(top)} top-level nodes fp32"}
    return {"op_types_to_quantize": list(INT8_OPS), "scheme": "convolutions only (module scopes not named)"}


def quantize_graph(graph: bytes, z_calib: np.ndarray, plan: dict) -> bytes:
    """The fp32 graph statically quantized to int8 (QDQ) by ONNX Runtime on normalised crops
    z_calib (n, 1, H, W) float32: per-channel int8 weights, uint8 activations, min/max ranges;
    `plan` (int8_plan) says which nodes."""
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
                            calibrate_method=CalibrationMethod.MinMax,
                            **{k: v for k, v in plan.items() if k != "scheme"})
        with open(dst, "rb") as f:
            out = f.read()
    return _unquantized_inputs(out, set(plan.get("nodes_to_exclude", ())))


def _unquantized_inputs(graph: bytes, fp32_nodes: set[str]) -> bytes:
    """Rewire each fp32 (excluded) node that reads a Q -> DQ round trip to the tensor before it.

    A tensor read by a quantized and an excluded node (the crop z: the first conv and the track
    prior) gets one Q/DQ pair shared by both, so the prior would see an 8-bit crop. Reading the
    original fp32 tensor instead keeps the prior exactly as trained; the quantized reader is unchanged."""
    import onnx

    m = onnx.load_from_string(graph)
    made_by = {o: n for n in m.graph.node for o in n.output}
    rewired = 0
    for n in m.graph.node:
        if n.name not in fp32_nodes:
            continue
        for k, name in enumerate(n.input):
            dq = made_by.get(name)
            q = made_by.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
            if q is not None and q.op_type == "QuantizeLinear":
                n.input[k] = q.input[0]
                rewired += 1
    return m.SerializeToString() if rewired else graph


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


def _graph(model: nn.Module, net: nn.Module, z: torch.Tensor, z_calib: np.ndarray | None = None
           ) -> tuple[bytes, bool, str | None]:
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
            return data, True, None
        f.unlink(missing_ok=True)
    except OSError:
        pass
    graph = export_network(net, z)
    if z_calib is None:
        return graph, False, None
    plan = int8_plan(graph, getattr(net, "track", None) is not None)
    return quantize_graph(graph, z_calib, plan), False, plan["scheme"]


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
    graph, cached, scheme = _graph(model, net, z[:8], z_calib)
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
        info.update(quantized=scheme or "kept graph", calibration_crops=int(len(z_calib)))
    return OrtPipeline(pre, ort_net, graph, tuple(example.shape[-2:])), info
