"""What this machine can run: bf16 matmul units (AVX-512-BF16 / AMX), int8 VNNI, CUDA, inductor, torchao.

Detection is cheap and cached; it never runs a model. `compile` is only known to work once it has
worked, so `inductor` here means "a C++ compiler and torch._inductor are present", and the scorer
still falls back (with a logged warning) when compilation fails at build time.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class Capabilities:
    cpu_capability: str  # torch.backends.cpu.get_cpu_capability(): "DEFAULT" | "AVX2" | "AVX512" | ...
    avx512_bf16: bool  # native bf16 dot products (Cooper Lake, Sapphire Rapids, Zen 4+)
    amx_bf16: bool  # AMX tiles (Sapphire Rapids+): the large bf16/int8 ceiling
    vnni: bool  # avx512_vnni / avx_vnni: int8 dot products
    cuda: bool
    cuda_bf16: bool
    inductor: bool  # torch._inductor importable, a C++ compiler on PATH, TORCH_COMPILE_DISABLE not set
    torchao: bool  # PT2E quantization lives in torchao since torch 2.9 (PERF_NOTES trap)
    onnxruntime: bool = False  # onnxruntime + onnx importable: the `onnx_fp32` path (onnx_path.py)

    @property
    def bf16_cpu(self) -> bool:
        return self.avx512_bf16 or self.amx_bf16

    def can_run(self, precision: str, device: str, compiled: bool, runtime: str = "torch") -> tuple[bool, str]:
        """(ok, reason). Reduced precision on hardware without native support is emulated and slower
        than fp32, so it counts as "cannot run" for `auto` (an explicit request still gets an error)."""
        if device == "cuda" and not self.cuda:
            return False, "CUDA is not available"
        if runtime == "onnxruntime":
            if device != "cpu":
                return False, "the ONNX Runtime path is a CPU path"
            if not self.onnxruntime:
                return False, "needs onnxruntime and onnx (pip install 'cropray[fast]')"
            if compiled or precision not in ("fp32", "int8"):
                return False, "the ONNX Runtime paths are fp32 and int8, uncompiled"
            return True, ""  # int8 without VNNI runs on MLAS's AVX2/AVX-512 u8s8 kernels: the probe times it
        if compiled and not self.inductor:
            return False, "torch.compile unavailable (needs torch._inductor and a C++ compiler; TORCH_COMPILE_DISABLE unset)"
        if precision == "bf16":
            if device == "cuda" and not self.cuda_bf16:
                return False, "this GPU has no bf16 support"
            if device == "cpu" and not self.bf16_cpu:
                return False, "the CPU has neither AVX-512-BF16 nor AMX (bf16 would be emulated, slower than fp32)"
        if precision == "int8":
            if device != "cpu":
                return False, "int8 PT2E (X86InductorQuantizer) is a CPU path"
            if not self.torchao:
                return False, "int8 needs the `torchao` package (pip install 'cropray[bench]' or torchao)"
            if not self.inductor:
                return False, "int8 PT2E runs fast only compiled (needs inductor and a C++ compiler)"
            if not self.vnni:
                return False, "the CPU has no VNNI/AMX int8 dot products"
        return True, ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["bf16_cpu"] = self.bf16_cpu
        return d


def _cpu_flags() -> frozenset[str]:
    """Flags from /proc/cpuinfo (Linux); empty elsewhere, where torch's own capability string decides."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def _torch_says(name: str) -> bool:
    """torch.cpu._is_*_supported() (private, present since torch 2.3): CPUID as oneDNN sees it.
    Needed because some kernels/VMs hide AMX from /proc/cpuinfo while the units work."""
    fn = getattr(torch.cpu, name, None)
    try:
        return bool(fn()) if fn is not None else False
    except Exception:  # noqa: BLE001 - a private probe must never break scoring
        return False


@functools.lru_cache(maxsize=1)
def detect() -> Capabilities:
    """This process's capabilities (cached: the hardware does not change under a running process)."""
    cap = torch.backends.cpu.get_cpu_capability()
    flags = _cpu_flags()
    cuda = torch.cuda.is_available()
    return Capabilities(
        cpu_capability=cap,
        avx512_bf16="avx512_bf16" in flags or _torch_says("_is_avx512_bf16_supported"),
        amx_bf16="amx_bf16" in flags or _torch_says("_is_amx_tile_supported"),
        vnni=bool({"avx512_vnni", "avx_vnni", "amx_int8"} & flags) or _torch_says("_is_vnni_supported"),
        cuda=cuda,
        cuda_bf16=bool(cuda and torch.cuda.is_bf16_supported()),
        inductor=importlib.util.find_spec("torch._inductor") is not None
        and any(shutil.which(c) for c in ("g++", "c++", "clang++"))
        and os.environ.get("TORCH_COMPILE_DISABLE", "").lower() not in ("1", "true"),
        torchao=importlib.util.find_spec("torchao") is not None,
        onnxruntime=all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx")),
    )
