"""Training crops from the archive (SPEC 8), drawn beside the real labels in every training epoch.

`ExtraCrops` holds crops that enter training only — injected positives and plain archive
backgrounds — never a fold's held-out part, a validation split, the threshold or a metric. Each
epoch draws `per_epoch` of them (a fresh random subset) plus enough real labelled crops that the real
ones make `real_share` of the draws: with 40 labels and 20,000 injected crops the labels still weigh
as much as everything else together at the default 0.5 (each seen ~50x per epoch, each time a fresh
augmented view). The crops are normalised once and the tensor is shared by every fold's trainer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class ExtraCrops:
    """Training-only crops. x (M, 1, H, W) float32 raw power, y (M,) in {0, 1}."""

    x: np.ndarray
    y: np.ndarray
    real_share: float = 0.5  # share of each epoch's draws that are real labelled crops
    per_epoch: int = 768  # archive crops drawn per epoch (all of them when fewer); = InjectConfig's default
    _held: dict = field(default_factory=dict, repr=False)  # preprocessing key -> held tensor

    def __post_init__(self):
        if not 0.05 <= self.real_share <= 0.95:
            raise ValueError(f"real_share must be in [0.05, 0.95], got {self.real_share}")
        self.y = np.asarray(self.y).astype(np.int64)

    def __len__(self) -> int:
        return len(self.y)

    def held(self, prepare, key):
        """The crops as a trainer holds them (prepare: raw numpy -> held tensor), computed once per key."""
        import torch

        if key not in self._held:
            self._held[key] = (prepare(self.x), torch.as_tensor(self.y))
        return self._held[key]

    def draws(self) -> int:
        return min(self.per_epoch, len(self))

    def real_draws(self, n_real: int) -> int:
        """Real crops to draw per epoch so they make `real_share` of it (at least one pass over them)."""
        return max(n_real, math.ceil(self.draws() * self.real_share / (1 - self.real_share)))

    def mix(self, real_idx, n_real: int, gen):
        """One epoch's indices: real_idx (< n_real) and a fresh subset of archive crops (>= n_real), shuffled."""
        import torch

        extra_idx = torch.randperm(len(self), generator=gen)[: self.draws()] + n_real
        idx = torch.cat([real_idx, extra_idx])
        return idx[torch.randperm(len(idx), generator=gen)]


def gather(x_real, y_real, held, idx):
    """(x, y) of one batch of mixed indices: < len(x_real) from the labels, the rest from `held`."""
    import torch

    n = len(y_real)
    r, e = idx[idx < n], idx[idx >= n] - n
    x_extra, y_extra = held
    return torch.cat([x_real[r], x_extra[e]]), torch.cat([y_real[r], y_extra[e]])


def archive_extra(archive, x, y, inject_cfg, *, crop_shape=None, say=None) -> tuple[ExtraCrops, dict]:
    """Injected training crops from `archive` for labels (x, y): the ExtraCrops and the summary that
    the bundle manifest records (settings, archive fingerprint, background counts, exclusions, warnings)."""
    from cropray.inject.build import inject_from_archive

    s = inject_from_archive(archive, x, y, inject_cfg, crop_shape=crop_shape)
    for w in s.warnings:
        (say or (lambda _m: None))(f"warning: {w}")
    info = {"archive": str(archive), **s.summary, "warnings": list(s.warnings)}
    return ExtraCrops(s.x, s.y, inject_cfg.real_share, inject_cfg.per_epoch), info
