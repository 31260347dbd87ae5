"""In-process forward throughput and accuracy of each execution path (no I/O, no Ray)."""

from __future__ import annotations

import time

import numpy as np

from cropray.bench.peak import gemm_rates
from cropray.evaluate.metrics import binary_metrics, calibrate_threshold
from cropray.fastpath import PATHS, TOLERANCE, build_scorer

MAX_FLIP_FRACTION = 0.001  # "accurate" in the bench's tables: at most 0.1% of decisions flipped vs fp32


def flips(ref: np.ndarray, got: np.ndarray, threshold: float) -> int:
    """How many is_signal decisions (score >= threshold) differ between two score vectors."""
    return int(np.count_nonzero((ref >= threshold) != (got >= threshold)))


def time_scorer(score, x: np.ndarray, batch: int, repeats: int, min_s: float = 1.0) -> list[float]:
    """crops/s of `repeats` timed runs of a warm scorer, in calls of `batch` crops from x (N,1,H,W).

    A run scores at least one batch and stops after min_s seconds or all of x, whichever comes
    first: slow paths (eager at ~100 crops/s on a busy 2-core machine) cost ~1 s per run, fast ones
    get len(x) crops for a stable rate.
    """
    rates = []
    for _ in range(repeats):
        n, t0 = 0, time.perf_counter()
        for i in range(0, len(x), batch):
            score(x[i:i + batch])
            n += len(x[i:i + batch])
            if time.perf_counter() - t0 >= min_s:
                break
        rates.append(n / (time.perf_counter() - t0))
    return rates


def reference_scores(model, x: np.ndarray, batch: int = 128) -> np.ndarray:
    """fp32 eager scores of the model as trained: what every path is compared with."""
    ref = build_scorer(model, path="eager", batch_size=batch, device="cpu")
    return np.concatenate([ref(x[i:i + batch]) for i in range(0, len(x), batch)])


def accuracy(ref: np.ndarray, got: np.ndarray, threshold: float, precision: str) -> dict:
    """max |d score| and is_signal flips vs fp32 eager; `auto_eligible` = within the 0.1% flip rule."""
    d = np.abs(got.astype(np.float64) - ref.astype(np.float64))
    nflip = flips(ref, got, threshold)
    return {"n": int(len(ref)), "max_abs_diff": float(d.max()), "mean_abs_diff": float(d.mean()),
            "flips": nflip, "flip_fraction": nflip / max(1, len(ref)),
            "within_tolerance": bool(d.max() <= TOLERANCE.get(precision, TOLERANCE["fp32"])),
            "auto_eligible": bool(np.isfinite(got).all() and nflip <= MAX_FLIP_FRACTION * len(ref))}


def held_out_quality(y: np.ndarray, s: np.ndarray, *, n_boot: int = 500, seed: int = 0) -> dict:
    """A path's quality on labelled crops it never trained on: ROC-AUC and recall at 1% FPR with 95%
    bootstrap intervals, and its own Youden threshold (the rule training uses)."""
    thr = calibrate_threshold(y, s)
    m = binary_metrics(y, s, thr, n_boot=n_boot, seed=seed)
    return {"n": m["n"], "roc_auc": m["roc_auc"], "recall_at_1pct_fpr": m["recall_at_1pct_fpr"], "threshold": thr}


def measure_path(model, name: str, *, batch_sizes, x_time: np.ndarray, x_acc: np.ndarray | None,
                 ref: np.ndarray | None, threshold: float, calibration: np.ndarray | None,
                 repeats: int, flops: float, peak: dict,
                 log, y_acc: np.ndarray | None = None, fp32_quality: dict | None = None,
                 device: str = "cpu") -> tuple[list[dict], dict | None]:
    """Rows {arch-free}: one per batch size (crops/s, GFLOP/s, fraction of peak, build seconds) and the
    accuracy of the runtime (measured with the scorer of the first batch size) on x_acc against `ref`.
    With labels y_acc: its own held-out ROC-AUC, and whether it lies within fp32's (`fp32_quality`)
    interval. A runtime that cannot run this model here is reported "unavailable" with the reason.
    On cuda the fraction of peak is left out (`peak` is the CPU's matmul ceiling)."""
    spec = PATHS[name]
    rows, acc = [], None
    for bi, batch in enumerate(batch_sizes):
        row = {"path": name, "precision": spec.precision, "runtime": spec.runtime, "batch": batch}
        try:
            t0 = time.perf_counter()
            s = build_scorer(model, path=name, device=device, threshold=threshold, batch_size=batch,
                             calibration=calibration)
            build_s = time.perf_counter() - t0
            xt = x_time[: max(batch, len(x_time) // batch * batch)]
            rates = time_scorer(s, xt, batch, repeats)
        except Exception as e:  # noqa: BLE001 - a runtime failing here is a result to report, not a crash
            rows.append({**row, "status": "unavailable", "reason": f"{type(e).__name__}: {str(e)[:200]}"})
            log(f"  {name} b={batch}: unavailable ({str(e)[:120]})")
            break
        med = float(np.median(rates))
        gflops = med * flops / 1e9
        peak_key = near = peak_gf = None
        if device == "cpu":
            peak_key = spec.precision if peak.get(spec.precision, {}).get("median_gflops") else "fp32"
            near = max(gemm_rates(peak_key), default=0.0)  # the GEMM timed right after this path (peak.py)
            peak_gf = max(peak[peak_key]["median_gflops"] or 0.0, near) or float("nan")
        d = s.describe()
        rows.append({**row, "status": "ok", "crops_per_s": med, "crops_per_s_best": float(max(rates)),
                     "ms_per_batch": 1e3 * batch / med, "gflops": gflops, "peak_precision": peak_key,
                     "peak_gflops_used": peak_gf, "peak_gflops_interleaved": near,
                     "fraction_of_peak": gflops / peak_gf if flops and peak_gf else None, "device": device,
                     "build_s": round(build_s, 3), "bn_folded": d.get("bn_folded"),
                     "channels_last": d.get("channels_last")})
        log(f"  {name:13s} b={batch:<4d} {med:8.0f} crops/s  (build {build_s:.1f} s)")
        if bi == 0 and x_acc is not None and ref is not None:
            # `eager` is the reference itself (same module, same kernels): not scored twice
            got = ref if name == "eager" else np.concatenate(
                [s(x_acc[i:i + batch]) for i in range(0, len(x_acc), batch)])
            acc = {"path": name, "precision": spec.precision, **accuracy(ref, got, threshold, spec.precision)}
            if y_acc is not None:  # quality, not agreement, decides (path-aware CV's rule)
                q = acc["quality"] = fp32_quality if name == "eager" and fp32_quality else held_out_quality(y_acc, got)
                lo = (fp32_quality or q)["roc_auc"]["lo"]
                acc["auc_within_fp32"] = bool(lo is not None and q["roc_auc"]["value"] >= lo)
    return rows, acc
