"""Which runtime `auto` runs, in order of preference (the first that builds and passes its check wins),
torch-free: the same rule for a scoring actor's torch-free start and for `build_scorer`.

CPU: `onnx_int8` when the bundle's path-aware CV admits it and it has calibration crops for the int8
ranges, then `onnx_fp32` (ONNX Runtime installed), then `fold_cl`. A model without conv/linear layers
(the label-free `dedoppler`) runs `numpy` when that runtime is installed, else `fold_cl`.
CUDA: `cuda_amp` when the path-aware CV admits it, then `fold_cl` on the GPU.
"""

from __future__ import annotations

from cropray.errors import ConfigError
from cropray.fastpath.specs import PATHS

# --precision of `cropray score` -> the runtime it asks for, per device
BY_PRECISION = {("fp32", "cpu"): "onnx_fp32", ("int8", "cpu"): "onnx_int8", ("fp32", "cuda"): "fold_cl",
                ("bf16", "cuda"): "cuda_amp"}


def candidates(device: str, *, admissible: tuple[str, ...] | None, has_calibration: bool, has_weights: bool,
               ort: bool, numpy_runtime: bool) -> list[str]:
    """auto's runtimes for this request, best first; the last one (`fold_cl`) always runs."""
    if device == "cuda":
        return [*(["cuda_amp"] if admissible and "cuda_amp" in admissible and has_weights else []), "fold_cl"]
    if not has_weights:
        return [*(["numpy"] if numpy_runtime else []), "fold_cl"]
    out = []
    if ort and admissible and "onnx_int8" in admissible and has_calibration:
        out.append("onnx_int8")
    if ort:
        out.append("onnx_fp32")
    return [*out, "fold_cl"]


def resolve(path: str, precision: str, device: str) -> str:
    """An explicit request (a runtime name, or a precision) -> one runtime name; "auto" stays "auto".
    ConfigError naming the flag when it cannot run on `device`."""
    if path != "auto":
        if path not in PATHS:
            raise ConfigError(f"unknown runtime {path!r}; valid: auto, {', '.join(PATHS)}")
        if device not in PATHS[path].devices:
            raise ConfigError(f"runtime {path!r} runs on {', '.join(PATHS[path].devices)}, not {device}")
        return path
    if precision == "auto":
        return "auto"
    name = BY_PRECISION.get((precision, device))
    if name is None:
        ok = sorted(p for p, d in BY_PRECISION if d == device)
        raise ConfigError(f"--precision {precision} does not run on {device} (there: auto, {', '.join(ok)})")
    return name
