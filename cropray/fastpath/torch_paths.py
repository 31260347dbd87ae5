"""The torch runtimes: `eager` (the model as trained, the reference), `fold_cl` (BN folded +
channels_last, fp32, exact: the fallback) and `cuda_amp` (fold_cl on CUDA under bf16 autocast, fp16
where the GPU has no bf16).

fold_cl: the input (B,1,H,W) with C=1 is already channels_last-contiguous, and oneDNN picks the
channels_last kernels from the weights, which avoids the NCHW max-pool that takes ~40% of eager time on
CPU. On CPU the model's RobustNorm runs as numpy in front (preprocess.py); on CUDA torch's medians stay
on the device.

cuda_amp: autocast wraps only the conv trunks (direct nn.Sequential children holding convs); the head
(pool, linear, sigmoid; the Siamese projection and gallery matmul) and the track prior stay fp32 -- a
score computed in bf16 is rounded to 2^-8 near 1, which alone would flip decisions at a high threshold.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from cropray.fastpath.fold import fold_batchnorm
from cropray.fastpath.preprocess import split_preprocess
from cropray.fastpath.specs import in_chunks


class _Autocast(nn.Module):
    def __init__(self, model: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.model, self.dtype = model, dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cuda", dtype=self.dtype):
            return self.model(x).float()


def autocast_trunks(model: nn.Module, dtype: torch.dtype) -> int:
    """Wrap the conv trunks of `model` (in place) in CUDA autocast; returns how many were wrapped."""
    wrapped = 0
    for name, child in list(model.named_children()):
        if isinstance(child, nn.Sequential) and any(isinstance(c, nn.Conv2d) for c in child.modules()):
            setattr(model, name, _Autocast(child, dtype))
            wrapped += 1
    return wrapped


def runner(model: nn.Module, name: str, device: str, example: torch.Tensor) -> tuple[callable, dict]:
    """(fn torch raw (B,1,H,W) on device -> (B,), info) for runtime `name`; `example` (B,1,H,W) checks
    the numpy preprocessing copy. Raises what torch raises when it cannot be built."""
    info = {"bn_folded": 0, "channels_last": False, "preprocess": "torch (in model)"}
    if name == "eager":
        m = model.to(device).eval()
        return m, info
    m, info["bn_folded"], _ = fold_batchnorm(model)  # a deep copy
    pre = None
    if device == "cpu":
        pre, info["preprocess"] = split_preprocess(m, example)
    m = m.to(memory_format=torch.channels_last).to(device).eval()
    info["channels_last"] = True
    if name == "cuda_amp":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if not autocast_trunks(m, dtype):
            raise RuntimeError("cuda_amp: the model has no conv trunk to run in reduced precision")
        info["autocast"] = str(dtype).replace("torch.", "")
    return (m if pre is None else (lambda x: m(pre(x)))), info


class TorchScorer:
    """np (B,1,H,W) float32 -> np (B,) float32 through a torch runner, in chunks of `batch`."""

    def __init__(self, fn, *, device: str, batch: int, info: dict):
        self.fn, self.device, self.batch = fn, device, int(batch)
        self.threshold: float | None = None
        self._info = {**info, "device": device, "batch": self.batch}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return in_chunks(self._run, x, self.batch)

    def _run(self, x: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            # Arrow batches are read-only views; no runtime writes its input, so share the memory
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            t = torch.from_numpy(x)  # (b,1,H,W) zero-copy
        with torch.inference_mode():
            return self.fn(t.to(self.device, non_blocking=True)).float().cpu().numpy()

    def describe(self) -> dict:
        return {**self._info, "threshold": self.threshold, "threads": torch.get_num_threads()}
