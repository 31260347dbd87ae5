"""Build the CPU ONNX Runtime scorer of a bundle from its packs, torch-free (graph_cache.py, ort.py).

`ort_scorer(names, fp32, ...)` walks auto's candidates (policy.py) while they are ONNX Runtime ones:
`onnx_int8` (the cached int8 pack of this bundle, ORT version and ISA level, else quantized from the
fp32 pack now and cached), then `onnx_fp32`. Each is checked against the eager scores the pack carries;
a refused one is recorded in `fallbacks` and the next tried. It returns None when the next candidate
needs torch (`fold_cl`), and the caller builds that.
"""

from __future__ import annotations

import logging

import numpy as np

from cropray.bundle_graph import GraphPack, check_crops
from cropray.fastpath import graph_cache
from cropray.fastpath.isa import int8_settings
from cropray.fastpath.ort import cpu_scorer, int8_pack

log = logging.getLogger("cropray.fastpath")


def int8_of(fp32: GraphPack, calibration: np.ndarray, *, bundle_sha256: str | None, level: str
            ) -> tuple[GraphPack, str]:
    """(int8 pack, "cache" | "quantized") for this CPU's ISA level; cached only for a bundle (a digest)."""
    key = None if bundle_sha256 is None else graph_cache.graph_key(bundle_sha256, "int8", level)
    cached = None if key is None else graph_cache.load(key)
    if cached is not None:
        return cached, "cache"
    return int8_pack(fp32, calibration, int8_settings(level)), "quantized"  # stored once it passes its check


def ort_scorer(names: list[str], fp32: GraphPack, *, calibration: np.ndarray | None, bundle_sha256: str | None,
               level: str, threads: int, batch: int, fp32_source: str, fallbacks: list[dict]):
    """The first of `names` that builds and passes its check, while they are ONNX Runtime runtimes;
    None when the next one needs torch. Refusals are appended to `fallbacks`."""
    cx = check_crops(calibration, fp32.meta["input_shape"])
    for name in names:
        if name not in ("onnx_int8", "onnx_fp32"):
            return None
        try:
            if name == "onnx_int8":
                pack, how = int8_of(fp32, calibration, bundle_sha256=bundle_sha256, level=level)
                s = cpu_scorer(pack, cx, threads=threads, batch=batch, precision="int8", source=how)
                s._info["isa"] = level
                if how == "quantized" and bundle_sha256 is not None:
                    graph_cache.store(graph_cache.graph_key(bundle_sha256, "int8", level), pack)
                return s
            return cpu_scorer(fp32, cx, threads=threads, batch=batch, source=fp32_source)
        except Exception as e:  # noqa: BLE001 - a runtime that cannot be built here means "try the next"
            if name == "onnx_int8" and bundle_sha256 is not None:  # a cached graph that fails: rebuilt next time
                graph_cache.drop(graph_cache.graph_key(bundle_sha256, "int8", level))
            msg = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
            log.warning("fastpath: %s refused (%s); falling back", name, msg)
            fallbacks.append({"path": name, "reason": msg})
    return None
