"""The training budget: how long a model trains, scaled to the label count. Torch-free.

Three rules, each applying only where the config leaves the field at None (an explicit value wins):

* **Epoch cap** `epoch_cap(arch_epochs, n)`: the architecture's cap up to `BUDGET_LABELS` labels, then
  shrinking as sqrt(BUDGET_LABELS / n) (never below `MIN_CAP`). Up to ~400 labels a CV training part
  holds <= 256 crops, so an epoch is the 256-draw minimum (`epoch_crops`) and its cost does not grow
  with n; beyond, an epoch is one pass over the training part (cost ~ n) and carries more distinct
  crops, so fewer passes reach the same number of optimiser steps: total draws per fold then grow as
  sqrt(n) instead of n.
* **Warm-up** `warmup_epochs(epochs)`: no early stop, and no earlier weights kept, before this epoch:
  epochs // 4 (was epochs // 2), and at least min(5, epochs // 2), so a 3-10 crop validation split
  cannot pick epoch-2 weights.
* **CV plateau** `CVPlateau`: k folds trained in lockstep stop together once the ROC-AUC of their
  inner validation scores, pooled over the folds, has not risen by `CV_DELTA` for `cv_patience`
  epochs after the warm-up. One fold's own validation split (0.16 n crops: 4-8 at 25-50 labels)
  saturates at AUC 1.0 early, and its loss tie-break keeps resetting its patience, so per-fold early
  stopping alone rarely stops; pooled over k folds the splits hold ~0.2 n crops, a steadier signal,
  and it never reads a held-out crop: a stop on the held-out ROC-AUC would pick the epoch that
  flatters the very figure the candidates are later judged by.
"""

from __future__ import annotations

import math

BUDGET_LABELS = 400  # labels at which a 5-fold CV training part (0.64 n) fills the 256-draw epoch
MIN_CAP = 10  # the epoch cap never shrinks below this
CV_DELTA = 0.002  # a CV ROC-AUC rise smaller than this is not progress (noise at these label counts)


def epoch_cap(arch_epochs: int, n_labels: int | None) -> int:
    """Maximum epochs for `n_labels` labels given the architecture's cap (module docstring)."""
    if not n_labels or n_labels <= BUDGET_LABELS or arch_epochs <= MIN_CAP:
        return int(arch_epochs)
    return max(MIN_CAP, round(arch_epochs * math.sqrt(BUDGET_LABELS / n_labels)))


def warmup_epochs(epochs: int) -> int:
    """Default `min_epochs`: epochs // 4, at least min(5, epochs // 2)."""
    return max(min(5, epochs // 2), epochs // 4)


class CVPlateau:
    """Stop rule on the per-epoch pooled inner-validation ROC-AUC of lockstep folds: `update(epoch, auc)` -> True to stop."""

    def __init__(self, patience: int, warmup: int, delta: float = CV_DELTA):
        self.patience, self.warmup, self.delta = int(patience), int(warmup), float(delta)
        self.best, self.best_epoch = -math.inf, 0

    def update(self, epoch: int, auc: float) -> bool:
        if auc > self.best + self.delta:
            self.best, self.best_epoch = auc, epoch
        if self.patience <= 0 or epoch <= self.warmup:
            return False
        return epoch - max(self.best_epoch, self.warmup) >= self.patience
