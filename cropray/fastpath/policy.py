"""How `precision="auto"` / `compile="auto"` choose a path: a static ranking plus a cheap guard.

Why static: measuring every path's accuracy on >= 10,000 crops at build time would cost each Ray actor
~25 s of fp32 eager scoring (400 crops/s on 2 cores) before it scores anything. `cropray bench`
measures speed and accuracy (max |d score|, is_signal flips on >= 10k crops of a trained model) for
every path; the ranking below is what it measured on AVX-512-BF16 CPUs (PERF_NOTES, README): int8
compiled > bf16 compiled > fp32 compiled > bf16 eager > fp32 folded, each within 0.1% flips.

Why a guard: a user's model may react to reduced precision worse than ours. When the bundle carries
calibration crops, the chosen reduced-precision path is compared with fp32 eager on up to
`GUARD_CROPS` of them (< 1 s) and rejected (next path in the ranking) when max |d score| exceeds the
path's tolerance or more than max(1, 0.1%) of decisions flip.
"""

from __future__ import annotations

import math

import numpy as np

from cropray.fastpath.capabilities import Capabilities
from cropray.fastpath.paths import PATHS, TOLERANCE, PathSpec

AUTO_ORDER = {
    "cpu": ("int8", "compile_bf16", "compile_fp32", "bf16", "fold_cl"),
    "cuda": ("compile_bf16", "bf16", "compile_fp32", "fold_cl"),  # int8 PT2E x86 is a CPU path
}
GUARD_CROPS = 512
MAX_FLIP_FRACTION = 0.001


def candidates(caps: Capabilities, device: str, precision: str, compile_, *, has_calibration: bool,
               ) -> tuple[list[PathSpec], list[dict]]:
    """Paths to try in order for this request, and the skipped ones with the reason (for describe())."""
    skipped = []
    out = []
    for name in AUTO_ORDER[device]:
        spec = PATHS[name]
        if precision != "auto" and spec.precision != precision:
            continue
        # int8 only runs compiled: an explicit --precision int8 keeps it even with compile=False
        if compile_ != "auto" and spec.compiled != bool(compile_) and precision != "int8":
            continue
        ok, why = caps.can_run(spec.precision, device, spec.compiled)
        if ok and spec.precision == "int8" and not has_calibration and precision == "auto":
            ok, why = False, "no calibration crops in the bundle (int8 scales need real crops)"
        if ok:
            out.append(spec)
        else:
            skipped.append({"path": name, "reason": why})
    return out, skipped


def flips(ref: np.ndarray, got: np.ndarray, threshold: float) -> int:
    """How many is_signal decisions (score >= threshold) differ between two score vectors."""
    return int(np.count_nonzero((ref >= threshold) != (got >= threshold)))


def guard(spec: PathSpec, ref: np.ndarray, got: np.ndarray, threshold: float) -> dict:
    """Accuracy check of a path's scores against fp32 eager on the same crops."""
    n = len(ref)
    d = np.abs(ref.astype(np.float64) - got.astype(np.float64))
    max_abs = float(d.max()) if n else 0.0
    nflip = flips(ref, got, threshold)
    allowed = max(1, math.floor(MAX_FLIP_FRACTION * n))
    ok = bool(np.isfinite(got).all()) and max_abs <= TOLERANCE[spec.precision] and nflip <= allowed
    return {"n": n, "max_abs_diff": max_abs, "flips": nflip, "ok": ok}
