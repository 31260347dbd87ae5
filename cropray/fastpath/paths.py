"""Execution paths: one model, several ways to run it (layout, precision, compilation).

A path turns a model (B,1,H,W raw -> (B,) score) into a `Runner`: a torch callable over batches of
any size. Every path except `eager` works on a BN-folded copy with channels_last conv weights (the
input (B,1,H,W) with C=1 is already channels_last-contiguous, and oneDNN picks the channels_last
kernels from the weights, which avoids the NCHW max-pool that takes ~40% of eager time here).

Compiled paths (inductor with freezing: weights become constants, conv weights prepacked) are traced
at ONE batch size (`batch`): larger calls are cut into `batch`-sized chunks and the last chunk is
padded by repeating its last crop, so a scorer compiles exactly once, whatever batch sizes arrive
(Ray Data's last batch per block is short). Every row of our models is computed independently
(preprocessing is per crop, BN is folded), so padding rows cannot change the real rows' scores.

On CPU, optimized paths also run the model's RobustNorm as numpy outside the network (exact medians
by np.partition, ~15x faster than torch.median here; preprocess.py) and compile/quantize only the
network that follows it.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from cropray.fastpath.fold import fold_batchnorm
from cropray.fastpath.preprocess import split_preprocess
from cropray.fastpath.specs import PATHS, TOLERANCE, PathSpec  # noqa: F401  (re-exported)


class _Autocast(nn.Module):
    """Runs the wrapped module under bf16 autocast; its output comes back float32."""

    def __init__(self, model: nn.Module, device: str):
        super().__init__()
        self.model = model
        self.device_type = device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            return self.model(x).float()


def autocast_trunks(model: nn.Module, device: str) -> nn.Module:
    """bf16 autocast around the conv trunks (direct nn.Sequential children holding convs) only.

    The head (pool, linear, sigmoid; the Siamese projection and gallery matmul) stays fp32: a score
    computed in bf16 is rounded to 2^-8 near 1, which alone would flip decisions at a high threshold.
    A model without such children is wrapped whole.
    """
    wrapped = 0
    for name, child in list(model.named_children()):
        if isinstance(child, nn.Sequential) and any(isinstance(c, nn.Conv2d) for c in child.modules()):
            setattr(model, name, _Autocast(child, device))
            wrapped += 1
    return model if wrapped else _Autocast(model, device)


class Runner:
    """torch (B,1,H,W) float32 on `device` -> (B,) float32; chunks of `batch`, padded when `pad`."""

    def __init__(self, fn, *, batch: int, pad: bool):
        self.fn = fn
        self.batch = batch
        self.pad = pad

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if n == self.batch or (n < self.batch and not self.pad):
            return self.fn(x)
        out = []
        for i in range(0, n, self.batch):
            chunk = x[i:i + self.batch]  # (b, 1, H, W), b <= batch
            b = chunk.shape[0]
            if b < self.batch and self.pad:
                # repeat the last crop: a real crop, so no NaN/inf from an all-zero one
                chunk = torch.cat([chunk, chunk[-1:].expand(self.batch - b, *chunk.shape[1:])])
            out.append(self.fn(chunk)[:b])
        return torch.cat(out)


def prepare(model: nn.Module, spec: PathSpec, *, device: str, batch: int, example: torch.Tensor,
            calibration: torch.Tensor | None) -> tuple[Runner, dict]:
    """Build the runner for `spec` and warm it up once on `example` (B=batch, 1, H, W).

    Returns (runner, info): info has bn_folded/bn_left/channels_last/preprocess and, for compiled
    paths, compile_s (first-call time: trace + inductor codegen + C++ build, paid once per scorer).
    On CPU the model's RobustNorm runs as numpy outside the (compiled) network (preprocess.py).
    Raises whatever torch raises when a path cannot be built; the caller decides on a fallback.
    """
    if spec.runtime == "onnxruntime":  # the network exported and run by ONNX Runtime (onnx_path.py)
        from cropray.fastpath import onnx_path

        fn, info = onnx_path.build(model, example.cpu(), threads=torch.get_num_threads(), precision=spec.precision,
                                   calibration=None if calibration is None else calibration.cpu())
        return Runner(fn, batch=batch, pad=False), info
    info: dict = {"bn_folded": 0, "bn_left": 0, "channels_last": False, "preprocess": "torch (in model)"}
    m, pre = model, None
    if spec.optimized:
        m, info["bn_folded"], info["bn_left"] = fold_batchnorm(model)  # a deep copy
        if device == "cpu":  # on GPU the torch medians are fast: keep them on the device
            pre, info["preprocess"] = split_preprocess(m, example)
        m = m.to(memory_format=torch.channels_last)
        info["channels_last"] = True
    m = m.to(device).eval()
    if pre is not None:  # the network is traced/quantized on normalised crops from here on
        with torch.no_grad():
            example = pre(example)
            calibration = None if calibration is None else pre(calibration)
    if spec.precision == "bf16":
        m = autocast_trunks(m, device)
    if spec.precision == "int8":
        from cropray.fastpath.quantize import quantize_int8  # torchao imported only when asked

        m = quantize_int8(m, example=example, calibration=calibration)
    net = m
    if spec.compiled:
        # Freezing must be on when the model is first traced: per-call options fail on int8
        # (onednn.qconv_prepack, PERF_NOTES). It only affects graphs compiled under no_grad/inference.
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
        net = torch.compile(m, dynamic=False, fullgraph=False)
    t0 = time.perf_counter()
    with torch.inference_mode():
        net(example)  # first call: trace + compile for compiled paths
    if spec.compiled:
        info["compile_s"] = round(time.perf_counter() - t0, 3)
    fn = net if pre is None else (lambda x: net(pre(x)))  # preprocessing stays eager (numpy)
    return Runner(fn, batch=batch, pad=spec.compiled), info
