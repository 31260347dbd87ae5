"""The shipped decision threshold and the rule that set it. Torch-free (scores in, numbers out).

Two rules (a bundle's manifest records which, `train_summary.threshold`):

* `youden` (default): maximise Youden's J (TPR - FPR) on the out-of-fold CV scores. It needs only
  the labels, but at 25-50 labels it rests on 40-50 scores, and its false-alarm rate on fresh
  crops is whatever those few negatives imply.
* `target_fpr` (`--target-fpr F`, needs an archive): the score that a fraction F of screened archive
  backgrounds exceed -- the way radio searches set a detection threshold from the noise itself. The
  backgrounds are crops the archive screening kept as plain (cropray.inject: no track the physics
  statistic sees), *held back from training* (`hold_back`), so the shipped model never learned them
  as negatives and its scores on them are those a fresh background would get. With n backgrounds the
  false-alarm rate is known to about sqrt(F / n): 0.01 +- 0.0022 at n = 2,000.
"""

from __future__ import annotations

import numpy as np

HOLD_BACK_MAX = 2000  # screened backgrounds held back for a target-FPR threshold (at most)
HOLD_BACK_SHARE = 0.25  # ... and at most this share of the plain backgrounds (the rest still train)
MIN_EXCEEDING = 10  # fewer expected exceedances (n * F) than this: the threshold is noisy -> a warning


def youden_rule(threshold: float) -> dict:
    return {"rule": "youden", "threshold": float(threshold),
            "how": "Youden's J (max TPR - FPR) on out-of-fold cross-validation scores"}


def fpr_threshold(bg_scores, target_fpr: float) -> float:
    """The score that a fraction `target_fpr` of the backgrounds exceed: their (1 - F) quantile
    (linear interpolation between order statistics). bg_scores (n,) finite."""
    s = np.asarray(bg_scores, np.float64)
    if s.size == 0 or not np.isfinite(s).all():
        raise ValueError("a target-FPR threshold needs finite scores of at least one background")
    return float(np.quantile(s, 1.0 - float(target_fpr)))


def fpr_rule(bg_scores, target_fpr: float, youden: float) -> tuple[float, dict, list[str]]:
    """(threshold, the manifest's rule record, warnings) for `--target-fpr`."""
    s = np.asarray(bg_scores, np.float64)
    thr = fpr_threshold(s, target_fpr)
    warnings = []
    if s.size * target_fpr < MIN_EXCEEDING:
        warnings.append(f"--target-fpr {target_fpr:g} on {s.size:,} held-back backgrounds: only "
                        f"{s.size * target_fpr:.1f} expected above the threshold, so it is noisy (draw more with "
                        "--archive-crops)")
    rec = {"rule": "target_fpr", "threshold": thr, "target_fpr": float(target_fpr), "n_backgrounds": int(s.size),
           "exceed_fraction": float(np.mean(s >= thr)), "youden_threshold": float(youden),
           "how": f"the score {target_fpr:g} of {s.size:,} screened archive backgrounds (held back from "
                  "training) exceed"}
    return thr, rec, warnings


def hold_back(y_extra, seed: int, paired: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(indices of plain training-only archive crops to hold back for the threshold, indices of every crop
    to drop from training with them). Plain = not injected: label 0 (a negative) or -1 (unlabelled).
    A seeded random min(HOLD_BACK_MAX, HOLD_BACK_SHARE x plain) of them; `paired` (U plain copies, then
    the same U backgrounds injected, in order): a held-back copy's injected twin leaves training too, so
    no model has seen the held-back background at all."""
    y = np.asarray(y_extra)
    plain = np.flatnonzero(y != 1)
    n = min(HOLD_BACK_MAX, int(len(plain) * HOLD_BACK_SHARE))
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(0x7F1,)))
    idx = np.sort(rng.permutation(plain)[:n])
    return idx, (np.concatenate([idx, idx + len(y) // 2]) if paired else idx)
