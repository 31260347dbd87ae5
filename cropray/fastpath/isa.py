"""The CPU's instruction-set level for int8 kernels, torch-free: `isa()` -> "amx" | "avx512_vnni" |
"avx512" | "avx2" | "other".

Why it matters: ONNX Runtime's u8s8 int8 convolutions use VNNI (or AMX) where the CPU has it; without
VNNI they multiply-add pairs into 16-bit intermediates (vpmaddubsw), which saturate for 8-bit weights x
8-bit activations. ONNX Runtime's documented workaround is 7-bit weights (`reduce_range=True`). The level
keys the graph cache (an int8 graph is quantized for the kernels that will run it) and picks the
quantization settings; which kernels run is ONNX Runtime's own decision. Tests pass the level in
instead of reading the host.
"""

from __future__ import annotations

from pathlib import Path

LEVELS = ("amx", "avx512_vnni", "avx512", "avx2", "other")


def isa(cpuinfo: str | None = None) -> str:
    """The level from /proc/cpuinfo's flags (or the text given); "other" when unreadable."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return "other"
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    if "amx_int8" in flags:
        return "amx"
    if "avx512_vnni" in flags or "avx_vnni" in flags:
        return "avx512_vnni" if "avx512f" in flags else "avx2"  # AVX-VNNI alone: ORT's AVX2 kernels
    if "avx512f" in flags:
        return "avx512"
    return "avx2" if "avx2" in flags else "other"


def int8_settings(level: str) -> dict:
    """quantize_static's settings for CPUs of `level`: 7-bit weights (reduce_range) where the u8s8
    kernels lack VNNI and would saturate their 16-bit sums; per-channel weight scales everywhere."""
    if level not in LEVELS:
        raise ValueError(f"unknown ISA level {level!r}; one of {', '.join(LEVELS)}")
    return {"reduce_range": level not in ("amx", "avx512_vnni"), "per_channel": True}
