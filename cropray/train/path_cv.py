"""Path-aware cross-validation: each fold's held-out crops scored through every quick-to-build path.

After `cross_validate`, `CVResult.fold_models[i]` is the model whose held-out scores are
`oof_scores[fold == i]`. Rescoring those held-out crops through a runtime (BN folded +
channels_last fp32, ONNX Runtime int8, CUDA bf16 autocast) with the same fold model gives that
runtime's own out-of-fold scores, hence its own ROC-AUC with a bootstrap interval, recall at 1% FPR
and threshold (Youden's J, the rule the fp32 threshold uses). int8's calibration crops come from the
fold's *training* part (never its held-out crops), as a bundle's calibration crops come from its
training labels. Each fold's runtime is built exactly as scoring builds it (cropray.fastpath), so a
runtime that fails its agreement check here is recorded as failed.

Cost: the held-out sets are small (N labels in total across the folds) and each path is built once
per fold: README "Path-aware cross-validation" has the seconds added at 50 and 200 labels.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from cropray.bundle_quality import REFERENCE, ExecutionPaths, PathQuality, admissible_paths
from cropray.evaluate.metrics import binary_metrics, calibrate_threshold
from cropray.fastpath.specs import PATHS
from cropray.train.calibration import (  # per fold, from its training part
    CALIBRATION_CROPS,
    calibration_sample,
)

# Measured by default: fp32 (fold_cl; it stands for onnx_fp32, bundle_quality.MEASURED_AS), ONNX Runtime
# int8 (an export + quantization per fold, ~1-2 s each, with this CPU's int8 settings) and, where a GPU
# is present, cuda_amp (bf16 autocast on the conv trunks). onnx_fp32 on request (an export per fold).
DEFAULT_PATHS = ("fold_cl", "onnx_int8", "cuda_amp")
BATCH = 32  # held-out folds are tens of crops
HOW = {"fold_cl": "BN folded + channels_last, fp32", "onnx_fp32": "ONNX Runtime fp32, numpy RobustNorm",
       "onnx_int8": "ONNX Runtime static int8 (QDQ trunk, fp32 track prior and score), calibrated on each "
                    "fold's training part",
       "cuda_amp": "CUDA, BN folded + channels_last, bf16 autocast on the conv trunks"}


def flips(ref: np.ndarray, got: np.ndarray, threshold: float) -> int:
    """How many is_signal decisions (score >= threshold) differ between two score vectors."""
    return int(np.count_nonzero((ref >= threshold) != (got >= threshold)))


def runner_for(model, name: str, calibration: np.ndarray, *, isa_level: str | None = None, batch: int = BATCH):
    """A checked scorer (np (B,1,H,W) -> np (B,)) of runtime `name` for `model`: what scoring would
    build (cropray.fastpath.build_scorer), with `calibration` (n,1,H,W) training crops for int8 ranges
    and the agreement check. isa_level: the CPU's int8 level (default: this host's). Raises what
    building raises (then the path is recorded as failed)."""
    from cropray.fastpath.scorer import build_scorer

    device = "cuda" if PATHS[name].devices == ("cuda",) else "cpu"
    return build_scorer(model, path=name, device=device, calibration=calibration, batch_size=batch,
                        isa_level=isa_level, threshold=0.5)


def path_oof(cv, x: np.ndarray, y: np.ndarray, name: str, *, seed: int = 0,
             calibration_of: Callable | None = None, isa_level: str | None = None) -> np.ndarray:
    """(N,) out-of-fold scores of path `name`: fold i's held-out crops through fold i's model.

    calibration_of(i, train_idx) -> (n,1,H,W) crops for fold i (default: a stratified sample of the
    fold's training part; tests pass others to damage a path on purpose)."""

    out = np.full(len(y), np.nan, np.float64)
    for i, model in enumerate(cv.fold_models):
        te, tr = np.flatnonzero(cv.fold == i), np.flatnonzero(cv.fold != i)
        calib = (calibration_of(i, tr) if calibration_of is not None
                 else calibration_sample(x[tr], y[tr], CALIBRATION_CROPS, seed + i))
        out[te] = runner_for(model, name, calib, isa_level=isa_level)(x[te])
    return out


def quality(y: np.ndarray, s: np.ndarray, ref: np.ndarray, ref_threshold: float, *, n_boot: int, seed: int,
            seconds: float, measured: str) -> PathQuality:
    """A path's out-of-fold metrics against the labels; flips/max |d| against the fp32 scores."""
    if not np.isfinite(s).all():
        return PathQuality("failed", n=len(y), seconds=seconds, measured=measured,
                           reason=f"{int((~np.isfinite(s)).sum())} non-finite scores")
    thr = calibrate_threshold(y, s)
    m = binary_metrics(y, s, thr, n_boot=n_boot, seed=seed)
    return PathQuality("ok", roc_auc=m["roc_auc"], recall_at_1pct_fpr=m["recall_at_1pct_fpr"], threshold=float(thr),
                       flips_vs_fp32=flips(ref, s, ref_threshold),
                       max_abs_diff=float(np.max(np.abs(s - ref))), n=len(y), seconds=round(seconds, 2),
                       measured=measured)


def path_aware_cv(cv, x: np.ndarray, y: np.ndarray, *, paths=DEFAULT_PATHS, n_boot: int = 1000, seed: int = 0,
                  log: Callable[[str], None] | None = None, calibration_of: Callable | None = None,
                  isa_level: str | None = None, cuda: bool | None = None) -> ExecutionPaths:
    """Every path of `paths` cross-validated on `cv`'s folds -> the bundle's `ExecutionPaths` record.

    The fp32 reference is `cv.oof_scores` itself (the eager fold models: the bundle's CV metrics),
    with its threshold `cv.threshold`. A path that fails to build or gives non-finite scores is
    recorded as failed (not admissible). A model without conv/linear layers gets fp32 paths only;
    CUDA runtimes are measured only where a GPU is present (`cuda`: default torch's answer).
    """
    t0 = time.perf_counter()
    say = log or (lambda _m: None)
    y = np.asarray(y).astype(np.int64)
    ref = np.asarray(cv.oof_scores, np.float64)
    ref_m = binary_metrics(y, ref, cv.threshold, n_boot=n_boot, seed=seed)
    iv = ref_m["roc_auc"]
    interval = (iv["lo"], iv["hi"]) if iv["lo"] is not None else (iv["value"], iv["value"])
    record = {REFERENCE: PathQuality("ok", roc_auc=iv, recall_at_1pct_fpr=ref_m["recall_at_1pct_fpr"],
                                     threshold=float(cv.threshold), flips_vs_fp32=0, max_abs_diff=0.0, n=len(y),
                                     measured="fp32 eager: the cross-validation's own out-of-fold scores")}
    notes = []
    if not _has_weights(cv.fold_models[0]):
        paths = [p for p in paths if PATHS[p].precision == "fp32"]
        notes.append("no conv/linear layers: reduced precision changes nothing, only fp32 paths measured")
    if not (torch.cuda.is_available() if cuda is None else cuda):
        paths = [p for p in paths if "cpu" in PATHS[p].devices]
    for name in paths:
        t1 = time.perf_counter()
        try:
            s = path_oof(cv, x, y, name, seed=seed, calibration_of=calibration_of, isa_level=isa_level)
        except Exception as e:  # noqa: BLE001 - a path that cannot be built here is a result, not a crash
            first = str(e).splitlines()[0][:200] if str(e) else ""
            record[name] = PathQuality("failed", n=len(y), seconds=round(time.perf_counter() - t1, 2),
                                       measured=HOW.get(name, name), reason=f"{type(e).__name__}: {first}")
            say(f"path-aware CV: {name} not measured ({record[name].reason})")
            continue
        q = record[name] = quality(y, s, ref, cv.threshold, n_boot=n_boot, seed=seed,
                                   seconds=time.perf_counter() - t1, measured=HOW.get(name, name))
        if q.status == "ok":
            say(f"path-aware CV: {name} ROC-AUC {q.auc:.4f} (fp32 interval [{interval[0]:.4f}, {interval[1]:.4f}]), "
                f"threshold {q.threshold:.4g}, {q.flips_vs_fp32} flips vs fp32, {q.seconds:.1f} s")
    return ExecutionPaths(interval=(float(interval[0]), float(interval[1])), paths=record,
                          admissible=admissible_paths(interval, record), k=int(cv.k),
                          seconds=round(time.perf_counter() - t0, 2), notes=tuple(notes))


def _has_weights(model) -> bool:
    from torch import nn

    return any(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())
