"""The scoring runtimes as data, torch-free (configs check names against them without importing torch).

One runtime per device, plus the reference:
  CPU:  `onnx_fp32` (the default: ONNX Runtime over the exported network, numpy RobustNorm in front),
        `onnx_int8` (the same graph statically quantized; only where the bundle's path-aware CV admits
        it and the quantized graph agrees with the eager model on this CPU), `numpy` (label-free
        architectures without conv/linear layers: the de-Doppler search in numpy, no network).
  CUDA: `cuda_amp` (torch, BN folded, channels_last, bf16 autocast on the conv trunks, judged by the
        same path-aware CV), else `fold_cl` on the GPU.
  Both: `eager` (the model as trained, fp32: the reference every runtime is checked against) and
        `fold_cl` (BN folded + channels_last, fp32, exact: the fallback where ONNX Runtime cannot run).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class PathSpec:
    """How to run a model. `name` is what `--paths` and `describe()` use."""

    name: str
    precision: str  # "fp32" | "bf16" (CUDA autocast) | "int8" (ONNX Runtime static quantization)
    runtime: str  # "torch" | "onnxruntime" | "numpy"
    devices: tuple[str, ...]  # where it runs

    def to_dict(self) -> dict:
        return asdict(self)


PATHS: dict[str, PathSpec] = {p.name: p for p in (
    PathSpec("eager", "fp32", "torch", ("cpu", "cuda")),
    PathSpec("fold_cl", "fp32", "torch", ("cpu", "cuda")),
    PathSpec("onnx_fp32", "fp32", "onnxruntime", ("cpu",)),
    PathSpec("onnx_int8", "int8", "onnxruntime", ("cpu",)),
    PathSpec("cuda_amp", "bf16", "torch", ("cuda",)),
    PathSpec("numpy", "fp32", "numpy", ("cpu",)),
)}

# Max |score - fp32 eager score| a runtime may show on a trained model: the agreement check at every
# build (a broken graph or kernel is refused; quality itself is judged by path-aware CV).
TOLERANCE = {"fp32": 1e-4, "bf16": 0.05, "int8": 0.1}


def in_chunks(fn, x: np.ndarray, batch: int) -> np.ndarray:
    """Every runtime's call: raw crops x (B,1,H,W) -> fn on chunks of `batch` rows -> (B,) float32."""
    x = np.ascontiguousarray(x, dtype=np.float32)  # no copy when already float32 C-contiguous
    if x.ndim != 4:
        raise ValueError(f"expected crops (B,1,H,W), got shape {x.shape}")
    if len(x) == 0:
        return np.empty(0, np.float32)
    return np.concatenate([np.asarray(fn(x[i:i + batch]), np.float32).reshape(-1) for i in range(0, len(x), batch)])
