"""The shipped decision threshold and the rule that set it. Torch-free (scores in, numbers out).

Two rules (a bundle's manifest records which, `train_summary.threshold`):

* `youden` (default): maximise Youden's J (TPR - FPR) on the out-of-fold CV scores. It needs only
  the labels, but at 25-50 labels it rests on 40-50 scores, and its false-alarm rate on fresh
  crops is whatever those few negatives imply.
* `target_fpr` (`--target-fpr F`, needs an archive): the score that a fraction F of the archive's
  backgrounds exceed -- the way radio searches set a detection threshold from the data itself. The
  sample mirrors what was drawn: plain backgrounds the screening kept, *held back from training*
  (`hold_back`), so the shipped model never learned them as negatives, plus screened-out ones (never
  trained on) in their drawn proportion (`excluded_share`). Screened backgrounds alone understate the
  threshold wherever the screen removes bright interference: on the outside simulator's crops (harmonic
  combs, 70% of negatives with RFI) a 0.01 promise set on them gave 0.075 false alarms on fresh
  negatives (docs/quality_outside.md). Signals in the archive count among the exceedances, so the
  false-alarm rate on the archive's noise is at most about F / (1 - signal share), and lower when the
  signals score above the threshold. With n backgrounds the rate is known to about sqrt(F / n).
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
           "how": f"the score {target_fpr:g} of {s.size:,} archive backgrounds exceed (held back from training; "
                  "screened-out ones in their drawn share)"}
    return thr, rec, warnings


def excluded_share(n_held: int, n_usable: int, n_excluded: int, n_stored: int, seed: int) -> np.ndarray:
    """Indices into the stored sample of screened-out backgrounds (n_stored of n_excluded) to add to
    n_held held-back plain ones, so the threshold sample keeps the drawn mix: n_held x n_excluded /
    n_usable of them (all stored ones at most), seeded."""
    if n_usable <= 0 or n_excluded <= 0 or n_stored <= 0:
        return np.zeros(0, np.int64)
    m = min(n_stored, int(round(n_held * n_excluded / n_usable)))
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(0x7F2,)))
    return np.sort(rng.permutation(n_stored)[:m])


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
