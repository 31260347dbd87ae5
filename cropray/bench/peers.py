"""Peers: what an optimisation-minded user would run instead of us (optional `bench` extra).

ONNX Runtime (fp32; int8 static QDQ) and OpenVINO (fp32 with INFERENCE_PRECISION_HINT=f32 -- it
silently runs bf16 otherwise on bf16-capable CPUs --; bf16; int8 via NNCF when installed).
Neither can take our preprocessing (no ONNX Median op; OpenVINO cannot convert `unfold`), so the peer
runs the network on normalised crops. Headline `crops_per_s` uses the same numpy preprocessing as our
fast paths, so the comparison isolates the network runtime; `crops_per_s_torch_pre` is with the
model's torch RobustNorm (what a user exporting the network would have); `net_crops_per_s` is the
network alone.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cropray.bench.forward import accuracy, time_scorer
from cropray.fastpath.preprocess import NumpyRobustNorm

PEERS = (("onnxruntime", "fp32"), ("onnxruntime", "int8"), ("openvino", "fp32"), ("openvino", "bf16"),
         ("openvino", "int8"))
PEERS_QUICK = (("onnxruntime", "fp32"), ("openvino", "fp32"))  # --quick: no quantization passes


def _chain(pre, run):
    return lambda x: run(pre(x))


def _network(model: nn.Module) -> nn.Module:
    net = copy.deepcopy(model).eval()
    net.preprocess = nn.Identity()
    return net


def _onnx(net: nn.Module, z: np.ndarray, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.from_numpy(z),), str(path), dynamo=False, input_names=["z"],
                          output_names=["score"], dynamic_axes={"z": {0: "b"}, "score": {0: "b"}})
    return path


def _ort(net, z_calib, precision, threads, tmp: Path):
    import onnxruntime as ort

    path = _onnx(net, z_calib[:8], tmp / "net.onnx")
    if precision == "int8":
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.it = iter([{"z": z_calib[i:i + 32]} for i in range(0, len(z_calib), 32)])

            def get_next(self):
                return next(self.it, None)

        q = tmp / "net_int8.onnx"
        quantize_static(str(path), str(q), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        path = q
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return lambda z: sess.run(None, {"z": z})[0]


def _openvino(net, z_calib, precision, threads, tmp: Path):
    import openvino as ov

    # From the same ONNX graph as ONNX Runtime: OpenVINO's own TorchScript conversion froze the batch
    # size of the track prior's reshapes at the example's and scored other batch sizes wrongly.
    om = ov.convert_model(str(_onnx(net, z_calib[:8], tmp / "net_ov.onnx")))
    cfg = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
    if precision == "int8":
        import nncf  # optional: OpenVINO's post-training quantizer

        logging.getLogger("nncf").setLevel(logging.ERROR)
        data = nncf.Dataset([z_calib[i:i + 32] for i in range(0, len(z_calib), 32)])
        om = nncf.quantize(om, data, subset_size=len(z_calib))
    else:
        cfg["INFERENCE_PRECISION_HINT"] = "f32" if precision == "fp32" else "bf16"
    compiled = ov.Core().compile_model(om, "CPU", cfg)
    req = compiled.create_infer_request()
    out = compiled.output(0)
    return lambda z: req.infer([z])[out].copy()


def measure_peers(model: nn.Module, *, batch: int, x_time: np.ndarray, x_acc: np.ndarray, ref: np.ndarray,
                  threshold: float, calibration: np.ndarray, repeats: int, threads: int, log,
                  quick: bool = False) -> list[dict]:
    """One row per (runtime, precision): crops/s (with torch preprocessing), network-only crops/s, accuracy."""
    pre = model.preprocess
    fast = NumpyRobustNorm(pre)

    def normalise(x):  # the fast path's numpy RobustNorm
        with torch.inference_mode():
            return fast(torch.from_numpy(np.ascontiguousarray(x))).numpy()

    def normalise_torch(x):
        with torch.inference_mode():
            return pre(torch.from_numpy(np.ascontiguousarray(x))).numpy()

    rows = []
    net = _network(model)
    z_calib = normalise(calibration)
    z_time = normalise(x_time)
    with tempfile.TemporaryDirectory(prefix="cropray-peers-") as tmp:
        for runtime, precision in PEERS_QUICK if quick else PEERS:
            row = {"runtime": runtime, "precision": precision, "batch": batch}
            missing = [m for m in ([runtime] + (["nncf"] if runtime == "openvino" and precision == "int8" else []))
                       if importlib.util.find_spec(m) is None]
            if missing:
                rows.append({**row, "status": "not installed", "reason": f"pip install {' '.join(missing)}"})
                continue
            try:
                run = (_ort(net, z_calib, precision, threads, Path(tmp)) if runtime == "onnxruntime"
                       else _openvino(net, z_calib, precision, threads, Path(tmp)))
                net_rates = time_scorer(run, z_time, batch, repeats)
                full = _chain(normalise, run)
                rates = time_scorer(full, x_time, batch, repeats)
                rates_t = time_scorer(_chain(normalise_torch, run), x_time, batch, max(1, repeats // 2))
                got = np.concatenate([full(x_acc[i:i + batch]).reshape(-1) for i in range(0, len(x_acc), batch)])
            except Exception as e:  # noqa: BLE001 - a peer failing is a result, not a crash
                rows.append({**row, "status": "failed", "reason": f"{type(e).__name__}: {str(e)[:200]}"})
                log(f"  peer {runtime} {precision}: failed ({type(e).__name__})")
                continue
            rows.append({**row, "status": "ok", "crops_per_s": float(np.median(rates)),
                         "net_crops_per_s": float(np.median(net_rates)),
                         "crops_per_s_torch_pre": float(np.median(rates_t)),
                         **{f"accuracy_{k}": v for k, v in accuracy(ref, got, threshold, precision).items()}})
            log(f"  peer {runtime:11s} {precision:5s} {rows[-1]['crops_per_s']:8.0f} crops/s "
                f"(network alone {rows[-1]['net_crops_per_s']:.0f})")
    return rows
