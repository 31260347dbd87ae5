"""Which paths `precision="auto"` / `compile="auto"` may choose, and the accuracy guard.

Since issue 12 the choice among the candidates is measured (probe.py: a sub-second timing of each
uncompiled candidate on the machine at hand, a compile charged against the rows, cached per CPU
model and weights); the static ranking below is only the candidate list, the build order and the
fallback when probing is off (CROPRAY_PROBE=0). The history of that ranking:

Why static: measuring every path's accuracy on >= 10,000 crops at build time would cost each Ray actor
~25 s of fp32 eager scoring (400 crops/s on 2 cores) before it scores anything. `cropray bench`
measures speed and accuracy (max |d score|, is_signal flips on >= 10k crops of a trained model) for
every path; the ranking below is what it measured on AVX-512-BF16 CPUs (PERF_NOTES, README): int8
compiled > bf16 compiled > fp32 compiled > bf16 eager > fp32 folded, each within 0.1% flips.

Since path-aware CV (path_cv.py, quality.py): a bundle that records each path's cross-validated
ROC-AUC lets auto choose among its admissible paths (`admissible_only`) with no guard; the guard below
is what a bundle without that record (or a plain model) still gets.

Why a guard: flips depend on the bundle (how many scores sit near its threshold) as much as on the
path. When the bundle carries calibration crops, a reduced-precision path is compared with fp32
eager on up to `GUARD_CROPS` of them (< 1 s) and rejected (next path in the ranking) unless its
error bound puts at most 0.1% of them at risk of flipping (see `guard`). Without calibration crops
auto stays on fp32 paths: there is nothing to check reduced precision on.
"""

from __future__ import annotations

import math

import numpy as np

from cropray.fastpath.capabilities import Capabilities
from cropray.fastpath.paths import PATHS, TOLERANCE, PathSpec

# The candidates of `auto` per device. On CPU their order is only the order they are built and the
# tie-break: probe.py measures the candidates on the machine at hand and picks by speed (issue 12).
AUTO_ORDER = {
    "cpu": ("onnx_fp32", "onnx_int8", "int8", "compile_bf16", "compile_fp32", "bf16", "fold_cl"),
    "cuda": ("compile_bf16", "bf16", "compile_fp32", "fold_cl"),  # int8 PT2E x86 is a CPU path
}
GUARD_CROPS = 512
MAX_FLIP_FRACTION = 0.001
# compile="auto" compiles the fp32 path only for a scorer expected to score at least this many rows.
# Why: measured idle on 2 cores (`cropray bench`), compiling fp32 gains 8-21% over fold_cl (shallow
# 1,405 vs 1,304 crops/s, siamese 1,773 vs 1,488, deep 903 vs 749) and costs 2-17 s per fresh process
# (inductor codegen + C++ build). One actor at ~600 crops/s (1 thread) earns back ~10 s of compile
# after ~30-60k rows at that gain; 100k leaves a margin (losing a few seconds on a short job is cheap,
# missing 10-20% of a long one is not). Reduced precisions gain 1.6-2x from compiling (bf16) or need
# it (int8), so they always compile.
COMPILE_FP32_MIN_ROWS = 100_000


def drop_unpaid_compile(specs: list[PathSpec], compile_, expected_rows: int | None) -> tuple[list, list]:
    """(specs without compile_fp32 when it cannot pay for itself, skipped entries for describe())."""
    if compile_ != "auto" or expected_rows is None or expected_rows >= COMPILE_FP32_MIN_ROWS:
        return specs, []
    kept = [s for s in specs if s.name != "compile_fp32"]
    if len(kept) == len(specs):
        return specs, []
    return kept, [{"path": "compile_fp32", "reason": f"~{expected_rows:,} rows for this scorer: compiling fp32 "
                   f"pays back only from ~{COMPILE_FP32_MIN_ROWS:,} (gain 8-21%, cost 2-17 s)"}]


def drop_inert_precision(specs: list[PathSpec], precision: str, model) -> tuple[list, list]:
    """auto on a model without conv/linear layers (e.g. dedoppler): bf16 autocast and int8 PT2E would
    change nothing and only mislabel an fp32 computation, so keep fp32 paths."""
    from torch import nn

    if precision != "auto" or any(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules()):
        return specs, []
    return ([s for s in specs if s.precision == "fp32"],
            [{"path": s.name, "reason": "no conv/linear layers: reduced precision changes nothing"}
             for s in specs if s.precision != "fp32"])


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
        ok, why = caps.can_run(spec.precision, device, spec.compiled, spec.runtime)
        if ok and spec.precision != "fp32" and not has_calibration and precision == "auto":
            ok, why = False, "no calibration crops in the bundle: reduced precision cannot be checked"
        if ok:
            out.append(spec)
        else:
            skipped.append({"path": name, "reason": why})
    return out, skipped


def admissible_only(specs: list[PathSpec], record, *, has_calibration: bool) -> tuple[list, list]:
    """auto with a path-aware CV record (quality.ExecutionPaths): only the bundle's admissible paths.

    Quality replaces agreement (issue 12 lever 1): a path whose cross-validated ROC-AUC is within the
    fp32 interval may be chosen (by speed, probe.py), however many decisions it flips against fp32;
    one below it may not. int8 still needs calibration crops for its scales."""
    kept, skipped = [], []
    for s in specs:
        if s.name not in record.admissible:
            skipped.append({"path": s.name, "reason": record.why_not(s.name)})
        elif s.precision == "int8" and not has_calibration:
            skipped.append({"path": s.name, "reason": "no calibration crops in the bundle for int8's scales"})
        else:
            kept.append(s)
    return kept, skipped


def flips(ref: np.ndarray, got: np.ndarray, threshold: float) -> int:
    """How many is_signal decisions (score >= threshold) differ between two score vectors."""
    return int(np.count_nonzero((ref >= threshold) != (got >= threshold)))


def guard(spec: PathSpec, ref: np.ndarray, got: np.ndarray, threshold: float) -> dict:
    """Accuracy check of a path's scores against fp32 eager on the same (calibration) crops.

    Counting flips on a few hundred crops cannot show a 0.1% rate, so the guard bounds it: a crop
    is at risk when its fp32 score lies within twice the path's largest observed error of the
    threshold. The path passes when at most 0.1% of the crops are at risk (none below 1,000 crops)
    and its max |d score| is within TOLERANCE. Flips depend on how many scores sit near the
    threshold (a property of the bundle, not the machine): a sharp model passes, a hesitant one
    (scores bunched at the threshold) stays on fp32.
    """
    n = len(ref)
    d = np.abs(ref.astype(np.float64) - got.astype(np.float64))
    max_abs = float(d.max()) if n else 0.0
    at_risk = int(np.count_nonzero(np.abs(ref.astype(np.float64) - threshold) <= 2 * max_abs))
    allowed = math.floor(MAX_FLIP_FRACTION * n)
    ok = bool(np.isfinite(got).all()) and max_abs <= TOLERANCE[spec.precision] and at_risk <= allowed
    return {"n": n, "max_abs_diff": max_abs, "flips": flips(ref, got, threshold), "at_risk": at_risk,
            "allowed": allowed, "ok": ok}
