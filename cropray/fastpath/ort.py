"""The CPU runtime: ONNX Runtime over a `GraphPack`, fp32 or int8, torch-free.

`cpu_scorer(pack, ...)` -> an `OrtScorer` (np raw (B,1,H,W) -> np (B,)): the numpy RobustNorm in front
(ONNX has no Median operator), then the graph. Every build is checked against the pack's fp32 eager
scores of its check crops: fp32 within TOLERANCE["fp32"], int8 within TOLERANCE["int8"]; a graph
outside it is refused (RuntimeError) and the caller falls back.

A CNN's track prior (`prior` in the pack) runs beside the graph in numpy (physics_np; export.py).
int8: the fp32 graph statically quantized by ONNX Runtime's quantizer (QDQ, uint8 activations, int8
weights, min/max ranges from the bundle's calibration crops): every node inside a module scope (the
exporter's `/features/...`, `/head/...`); the top-level score arithmetic (squeeze, sigmoid, the Siamese
distances) stays fp32. Without VNNI (`isa.int8_settings`) weights are 7-bit (`reduce_range`) so that the
u8s8 kernels' 16-bit sums cannot saturate. Quantizing costs ~1 s, once per bundle, ORT version and ISA.
Threads: `intra_op_num_threads` = the actor's CPUs; spinning off, so that an idle session does not
burn the CPU the Ray read tasks need.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
import time
import warnings

import numpy as np

from cropray.bundle_graph import GraphPack
from cropray.fastpath.specs import TOLERANCE, in_chunks

INPUT, OUTPUT = "z", "score"


def available() -> tuple[bool, str]:
    missing = [m for m in ("onnxruntime", "onnx") if importlib.util.find_spec(m) is None]
    if missing:
        return False, f"needs {' and '.join(missing)} (pip install 'cropray[fast]')"
    return True, ""


def session(graph: bytes, threads: int):
    """An ONNX Runtime CPU session over `graph`, `threads` intra-op threads, no spinning."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, int(threads))
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3  # errors only: the CPU provider's notes would flood actor logs
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(graph, so, providers=["CPUExecutionProvider"])


def normalise(x: np.ndarray, preprocess: dict | None) -> np.ndarray:
    """(B,1,H,W) raw -> (B,1,H,W) float32 normalised by the numpy RobustNorm (identity when None)."""
    if preprocess is None:
        return np.ascontiguousarray(x, np.float32)
    from cropray.models.physics_np import robust_norm_np

    return np.ascontiguousarray(robust_norm_np(x, **preprocess), np.float32)


class OrtScorer:
    """np (B,1,H,W) float32 finite raw crops -> np (B,) float32, in chunks of `batch`. Not thread-safe."""

    def __init__(self, graph: bytes, preprocess: dict | None, *, threads: int, batch: int, info: dict,
                 prior: dict | None = None):
        self.graph, self.preprocess, self.prior, self.batch = graph, preprocess, prior, int(batch)
        self.threshold: float | None = None
        self.device = "cpu"
        self._sess = session(graph, threads)
        self._info = {**info, "ort_threads": max(1, int(threads)), "threads": max(1, int(threads)),
                      "device": "cpu", "batch": self.batch}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return in_chunks(self._run, x, self.batch)

    def _run(self, x: np.ndarray) -> np.ndarray:
        z = normalise(x, self.preprocess)  # (b,1,H,W)
        out = np.asarray(self._sess.run(None, {INPUT: z})[0], dtype=np.float32).reshape(-1)  # (b,)
        if self.prior is None:  # the graph computes the score
            return out
        from cropray.models.physics_np import track_snr_np

        p = self.prior  # out is the CNN's logit term; score = sigmoid(logit + scale * (track SNR - offset))
        logit = out + np.float32(p["scale"]) * (track_snr_np(z[:, 0], p["widths"], threads=self._info["threads"])
                                                 - np.float32(p["offset"]))
        return (1.0 / (1.0 + np.exp(-logit, dtype=np.float32))).astype(np.float32)

    def describe(self) -> dict:
        return {**self._info, "threshold": self.threshold}


def agreement(scorer, check_x: np.ndarray, check_scores: np.ndarray) -> float:
    """max |scorer(check_x) - stored eager scores| (inf on a shape mismatch; NaN propagates as inf)."""
    got = scorer(check_x)
    if got.shape != check_scores.shape or not np.isfinite(got).all():
        return float("inf")
    return float(np.max(np.abs(got.astype(np.float64) - check_scores)))


def int8_plan(graph: bytes) -> dict:
    """quantize_static's node selection: nodes inside a module scope int8, top-level ones fp32."""
    import onnx

    nodes = [n.name for n in onnx.load_from_string(graph).graph.node]
    top = [n for n in nodes if n.count("/") < 2]  # "/Squeeze", "/Sigmoid": the score's own arithmetic
    if len(top) == len(nodes):
        raise RuntimeError("the graph names no module scopes: nothing to quantize safely")
    return {"nodes_to_exclude": top, "scheme": f"{len(nodes) - len(top)} nodes int8; {len(top)} top-level fp32"}


def quantize(graph: bytes, z_calib: np.ndarray, *, reduce_range: bool, per_channel: bool) -> tuple[bytes, str]:
    """(int8 QDQ graph, scheme) of the fp32 graph, ranges from normalised crops z_calib (n,1,H,W)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    plan = int8_plan(graph)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{INPUT: z_calib[i:i + 32]} for i in range(0, len(z_calib), 32)])

        def get_next(self):
            return next(self.it, None)

    with tempfile.TemporaryDirectory(prefix="cropray-int8-") as tmp:
        src, dst = os.path.join(tmp, "fp32.onnx"), os.path.join(tmp, "int8.onnx")
        with open(src, "wb") as f:
            f.write(graph)
        root, level = logging.getLogger(), logging.getLogger().level
        root.setLevel(logging.ERROR)  # the quantizer's advice on the root logger would flood actor logs
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_static(src, dst, Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                            reduce_range=reduce_range, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                            nodes_to_exclude=plan["nodes_to_exclude"])
        root.setLevel(level)
        with open(dst, "rb") as f:
            out = f.read()
    return _unquantized_inputs(out, set(plan["nodes_to_exclude"])), plan["scheme"]


def _unquantized_inputs(graph: bytes, fp32_nodes: set[str]) -> bytes:
    """Rewire each fp32 (excluded) node that reads a Q -> DQ round trip to the tensor before it: the crop
    z is read by the first conv (quantized) and the track prior (fp32), which would otherwise see an
    8-bit crop through their shared Q/DQ pair."""
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


def int8_pack(fp32: GraphPack, calibration: np.ndarray, settings: dict) -> GraphPack:
    """The int8 pack quantized from `fp32` on the raw calibration crops (n,1,H,W) with `settings`."""
    z = normalise(calibration, fp32.preprocess)
    graph, scheme = quantize(fp32.graph, z, **settings)
    return GraphPack(graph, {**fp32.meta, "int8": {**settings, "scheme": scheme, "calibration_crops": len(z)}})


def cpu_scorer(pack: GraphPack, check_x: np.ndarray, *, threads: int, batch: int, precision: str = "fp32",
               source: str = "") -> OrtScorer:
    """A checked OrtScorer over `pack` (fp32 or an int8 pack); RuntimeError when it disagrees with the
    eager scores the pack carries by more than TOLERANCE[precision]."""
    ok, why = available()
    if not ok:
        raise RuntimeError(why)
    t0 = time.perf_counter()
    name = "onnx_int8" if precision == "int8" else "onnx_fp32"
    s = OrtScorer(pack.graph, pack.preprocess, threads=threads, batch=batch, prior=pack.meta.get("prior"),
                  info={"path": name, "precision": precision, "runtime": "onnxruntime", "graph_source": source,
                        "preprocess": "numpy" if pack.preprocess else "in graph",
                        "track_prior": None if pack.meta.get("prior") is None else "numpy, beside the graph",
                        **({"int8": pack.meta["int8"]} if precision == "int8" else {})})
    err = agreement(s, check_x, pack.check_scores)
    if not err <= TOLERANCE[precision]:
        raise RuntimeError(f"ONNX {precision} graph disagrees with the eager model by {err:.3g} > "
                           f"{TOLERANCE[precision]} on {len(check_x)} check crops")
    s._info.update(check_max_abs_diff=err, check_crops=len(check_x), build_s=round(time.perf_counter() - t0, 3))
    return s
