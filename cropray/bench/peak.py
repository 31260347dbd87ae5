"""The machine's matmul ceiling on the threads in use: what a model's GFLOP/s is a fraction of."""

from __future__ import annotations

import time

import numpy as np
import torch


def matmul_peak(*, size: int = 1024, rounds: int = 5, min_s: float = 0.2) -> dict:
    """Large square GEMM throughput in GFLOP/s: {"fp32": {...}, "bf16": {...}, "int8": {...}}.

    Each round runs the GEMM until `min_s` has passed; median and best over rounds are reported
    (the machine is shared, so the best round is the closest to the hardware ceiling). bf16/int8 are
    what AMX / AVX-512-BF16 / VNNI units give; on CPUs without them they are emulated and slow.
    """
    g = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=g)
    b = torch.randn(size, size, generator=g)
    out = {}
    cases = {"fp32": (a, b, torch.mm), "bf16": (a.bfloat16(), b.bfloat16(), torch.mm)}
    if hasattr(torch, "_int_mm"):  # int8 x int8 -> int32, oneDNN/VNNI on x86
        cases["int8"] = ((a * 20).to(torch.int8), (b * 20).to(torch.int8), torch._int_mm)
    flop = 2.0 * size**3
    for name, (x, y, fn) in cases.items():
        try:
            with torch.inference_mode():
                fn(x, y)  # warm-up (packing, thread pool)
                rates = []
                for _ in range(rounds):
                    k, t0 = 0, time.perf_counter()
                    while (dt := time.perf_counter() - t0) < min_s:
                        fn(x, y)
                        k += 1
                    rates.append(flop * k / dt / 1e9)
            out[name] = {"median_gflops": float(np.median(rates)), "best_gflops": float(max(rates))}
        except RuntimeError as e:  # e.g. _int_mm unsupported on this build
            out[name] = {"median_gflops": None, "best_gflops": None, "error": str(e).splitlines()[0]}
    out["threads"] = torch.get_num_threads()
    out["size"] = size
    return out


def gemm_rates(precision: str, *, size: int = 1024, rounds: int = 3, min_s: float = 0.05) -> list[float]:
    """GFLOP/s of `rounds` short GEMM rounds in one precision ([] when it cannot run here).

    The forward table times it right after each path (`interleaved peak`): on a shared machine the
    load at the start of a run is not the load when a path is timed minutes later (ORT read 134% of
    a peak measured under load at the start once), so a path's fraction of peak is taken against the
    best of the start's median and the GEMM measured next to it."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(size, size, generator=g), torch.randn(size, size, generator=g)
    x, y, fn = {"fp32": (a, b, torch.mm), "bf16": (a.bfloat16(), b.bfloat16(), torch.mm),
                "int8": ((a * 20).to(torch.int8), (b * 20).to(torch.int8), getattr(torch, "_int_mm", None))}[precision]
    if fn is None:
        return []
    rates = []
    try:
        with torch.inference_mode():
            fn(x, y)
            for _ in range(rounds):
                k, t0 = 0, time.perf_counter()
                while (dt := time.perf_counter() - t0) < min_s:
                    fn(x, y)
                    k += 1
                rates.append(2.0 * size**3 * k / dt / 1e9)
    except RuntimeError:
        return []
    return rates


def flops_per_crop(model: torch.nn.Module, shape=(64, 64), batch: int = 4) -> float:
    """FLOPs of one forward per crop (convs, matmuls; elementwise/median not counted), by FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(batch, 1, *shape) + 0.5
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(x)
    return counter.get_total_flops() / batch
