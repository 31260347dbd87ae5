"""The `onnx_fp32` execution path: the bundle's network run by ONNX Runtime, our numpy preprocessing in front.

Why: on the CPUs measured (PERF_NOTES, `cropray bench`) ONNX Runtime's fp32 convolutions reach ~0.9 of
the fp32 matmul peak where our best torch fp32 path reaches 0.55-0.60, and it needs no compile: the
session is built in ~0.1 s, so an actor scores its first rows as soon as the bundle is loaded.

The graph is built from the bundle's weights at load time (nothing new is stored in a bundle): the model is copied, its RobustNorm is moved out into the numpy copy the other
fast paths use (ONNX has no Median operator), and the rest -- conv trunk, head and the track prior's
Taylor tree -- is exported with `torch.onnx.export` into memory with a dynamic batch axis. Every build
is checked against the eager model on the example crops (the bundle's calibration crops when it has
them): more than `TOLERANCE["fp32"]` apart and the path is refused (the scorer falls back). The
exported bytes are kept next to the probe cache (`<cache>/onnx/<weights hash>.onnx`) so the next
actor skips the 1-6 s export; a kept graph goes through the same check (and is re-exported if it fails).

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

from cropray.fastpath.preprocess import is_robust_norm, split_preprocess
from cropray.fastpath.specs import TOLERANCE

INPUT, OUTPUT = "z", "score"


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


def session(model_bytes: bytes, threads: int):
    """An ONNX Runtime CPU session over `model_bytes`, `threads` intra-op threads, no spinning."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, int(threads))
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3  # errors only: the CPU provider's notes would flood actor logs
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


class OrtNet:
    """torch (B,1,H,W) float32 normalised crops -> torch (B,) float32, through an ORT session."""

    def __init__(self, sess):
        self.sess = sess

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        zn = np.ascontiguousarray(z.detach().cpu().numpy(), dtype=np.float32)  # zero-copy when contiguous
        out = self.sess.run(None, {INPUT: zn})[0]  # (B,)
        return torch.from_numpy(np.asarray(out, dtype=np.float32).reshape(-1))


def _graph_file(model: nn.Module, z: torch.Tensor):
    """Where this model's exported graph is kept: the probe cache's folder, keyed by weights + torch."""
    import hashlib

    from cropray.fastpath import probe

    key = hashlib.sha256(f"{probe.model_hash(model)}|{torch.__version__}|{tuple(z.shape[1:])}".encode()).hexdigest()
    return probe.cache_path().parent / "onnx" / f"{key[:24]}.onnx"


def _graph(model: nn.Module, net: nn.Module, z: torch.Tensor) -> tuple[bytes, bool]:
    """(ONNX bytes, from the cache?). Exporting costs 1-6 s per actor on 2 shared cores, so the graph of
    a model this machine exported before is read back; it is data (a protobuf graph, no code) and the
    eager check below refuses it exactly as a fresh export if it does not reproduce the model."""
    f = _graph_file(model, z)
    try:
        return f.read_bytes(), True
    except OSError:
        return export_network(net, z), False


def _store(model: nn.Module, z: torch.Tensor, graph: bytes) -> None:
    import os
    import tempfile

    f = _graph_file(model, z)
    try:
        f.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=f.parent, suffix=".onnx.tmp")
        with os.fdopen(fd, "wb") as out:
            out.write(graph)
        os.replace(tmp, f)  # atomic: a concurrent actor reads the old file or the whole new one
    except OSError:
        pass  # a read-only cache costs the next actor an export, nothing else


def build(model: nn.Module, example: torch.Tensor, *, threads: int) -> tuple[callable, dict]:
    """(fn raw (B,1,H,W) -> (B,), info) for `model`; RuntimeError when it cannot be built or disagrees.

    example: (B,1,H,W) raw crops for the export trace and the agreement check against eager fp32.
    """
    ok, why = available()
    if not ok:
        raise RuntimeError(why)
    t0 = time.perf_counter()
    net = copy.deepcopy(model).eval()
    pre, how = split_preprocess(net, example)  # numpy RobustNorm in front; None: export the whole model
    if pre is None and is_robust_norm(getattr(net, "preprocess", None) or nn.Identity()):
        raise RuntimeError(f"preprocessing cannot leave the graph ({how}); ONNX has no Median operator")
    pre = pre or nn.Identity()
    with torch.no_grad():
        z = pre(example)  # (B,1,H,W) normalised
    graph, cached = _graph(model, net, z[:8])
    ort_net = OrtNet(session(graph, threads))
    build_s = time.perf_counter() - t0
    with torch.inference_mode():
        ref = model(example).float()  # the model as trained, fp32 eager
    got = ort_net(z)
    err = float((got - ref).abs().max()) if got.shape == ref.shape else float("inf")
    if not err <= TOLERANCE["fp32"] and cached:  # a stale or damaged cached graph: export afresh
        _graph_file(model, z).unlink(missing_ok=True)
        return build(model, example, threads=threads)
    if not err <= TOLERANCE["fp32"]:  # also catches NaN
        raise RuntimeError(f"ONNX graph disagrees with the eager model by {err:.3g} > {TOLERANCE['fp32']}")
    if not cached:
        _store(model, z, graph)
    info = {"bn_folded": 0, "bn_left": 0, "channels_last": False, "preprocess": how,
            "runtime": "onnxruntime", "export_s": round(build_s, 3), "graph_cached": cached, "check_max_abs_diff": err,
            "ort_threads": max(1, int(threads))}
    return (lambda x: ort_net(pre(x))), info
