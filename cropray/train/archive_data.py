"""Training crops from the archive, drawn beside the real labels in every training epoch.

`ExtraCrops` holds crops that enter training only — injected positives and plain archive
backgrounds — never a fold's held-out part, a validation split, the threshold or a metric. Each
epoch draws `per_epoch` of them (a fresh random subset) plus enough real labelled crops that the real
ones make `real_share` of the draws: with 40 labels and 20,000 injected crops the labels still weigh
as much as everything else together at the default 0.5 (each seen ~50x per epoch, each time a fresh
augmented view). The crops are normalised once and the tensor is shared by every fold's trainer.

What a plain background teaches is `plain` (cropray.inject.config.PLAIN_MODES). With "paired" the
crops are U plain copies then the same U backgrounds injected, and a draw is a *pair*: `gather` puts
the drawn pairs' plain copies (label code PLAIN_COPY) then their injected copies (PAIRED_COPY), in
the same order, after the batch's real crops, so the loss (cropray.train.losses) matches the k-th
plain copy with the k-th injected one. A pair counts as two of `per_epoch`'s crops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from cropray.inject.config import PLAIN_MODES

UNLABELLED = -1  # a plain background of unknown content (plain="pu"); = cropray.inject.build.UNLABELLED
PLAIN_COPY = -2  # in a batch: the plain copy of a pair (plain="paired")
PAIRED_COPY = 2  # in a batch: the injected copy of a pair, matched to the PLAIN_COPY at the same rank


@dataclass
class ExtraCrops:
    """Training-only crops. x (M, 1, H, W) float32 raw power, y (M,) in {0, 1}."""

    x: np.ndarray
    y: np.ndarray
    real_share: float = 0.5  # share of each epoch's draws that are real labelled crops
    per_epoch: int = 768  # archive crops drawn per epoch (all of them when fewer); = InjectConfig's default
    plain: str = "negative"  # what a plain background teaches (module doc)
    pu_prior: float = 0.2  # plain="pu": assumed signal share among the plain backgrounds
    _held: dict = field(default_factory=dict, repr=False)  # preprocessing key -> held tensor
    excluded_x: np.ndarray | None = None  # (E', 1, H, W) a sample of the screened-out backgrounds (never trained)
    n_usable: int = 0  # backgrounds the screen kept (each crop of x is one of them, plain or injected)
    n_excluded: int = 0  # backgrounds the screen excluded (excluded_x samples them)

    def __post_init__(self):
        if not 0.05 <= self.real_share <= 0.95:
            raise ValueError(f"real_share must be in [0.05, 0.95], got {self.real_share}")
        if self.plain not in PLAIN_MODES:
            raise ValueError(f"plain must be one of {', '.join(PLAIN_MODES)}, got {self.plain!r}")
        self.y = np.asarray(self.y).astype(np.int64)
        if self.plain == "paired":
            u = len(self.y) // 2
            if len(self.y) != 2 * u or (self.y[:u] != UNLABELLED).any() or (self.y[u:] != 1).any():
                raise ValueError("plain='paired' needs U plain copies (label -1) then their U injected copies "
                                 "(label 1)")
        elif self.plain == "negative" and (self.y == UNLABELLED).any():
            raise ValueError("unlabelled archive crops (label -1) need plain='pu' or 'paired'")

    def __len__(self) -> int:
        """Drawable units: crops, or pairs with plain='paired'."""
        return len(self.y) // 2 if self.plain == "paired" else len(self.y)

    @property
    def unit(self) -> int:
        """Crops per drawn unit (2 for a pair)."""
        return 2 if self.plain == "paired" else 1

    def held(self, prepare, key):
        """The crops as a trainer holds them (prepare: raw numpy -> held tensor), computed once per key."""
        import torch

        if key not in self._held:
            self._held[key] = (prepare(self.x), torch.as_tensor(self.y))
        return self._held[key]

    def draws(self) -> int:
        """Units drawn per epoch: per_epoch crops' worth (all units when fewer)."""
        return min(max(1, self.per_epoch // self.unit), len(self))

    def real_draws(self, n_real: int) -> int:
        """Real crops to draw per epoch so they make `real_share` of it (at least one pass over them)."""
        return max(n_real, math.ceil(self.draws() * self.unit * self.real_share / (1 - self.real_share)))

    def mix(self, real_idx, n_real: int, gen):
        """One epoch's indices: real_idx (< n_real) and a fresh subset of archive crops (>= n_real), shuffled."""
        import torch

        extra_idx = torch.randperm(len(self), generator=gen)[: self.draws()] + n_real
        idx = torch.cat([real_idx, extra_idx])
        return idx[torch.randperm(len(idx), generator=gen)]


    def gather(self, x_real, y_real, held, idx):
        """(x, y) of one batch of mixed indices (module doc for the paired layout)."""
        if self.plain != "paired":
            return gather(x_real, y_real, held, idx)
        import torch

        n, u = len(y_real), len(self)
        r, e = idx[idx < n], idx[idx >= n] - n  # e: pair indices
        x_extra, _ = held
        codes = torch.cat([torch.full((len(e),), PLAIN_COPY), torch.full((len(e),), PAIRED_COPY)]).to(y_real.dtype)
        return torch.cat([x_real[r], x_extra[e], x_extra[e + u]]), torch.cat([y_real[r], codes])


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
    return ExtraCrops(s.x, s.y, inject_cfg.real_share, inject_cfg.per_epoch, plain=inject_cfg.plain,
                      pu_prior=inject_cfg.pu_prior, excluded_x=s.excluded_x, n_usable=int(s.summary["usable"]),
                      n_excluded=int(s.summary["excluded_bright"])), info


def threshold_backgrounds(crops: ExtraCrops, seed: int) -> tuple[ExtraCrops, np.ndarray]:
    """(crops without the held-back ones, (n, 1, H, W) raw backgrounds for a target-FPR threshold): plain
    screened backgrounds held back from training (threshold.hold_back) plus screened-out ones in their drawn
    proportion (threshold.excluded_share), so the sample is the archive as drawn, not only its quiet part."""
    import dataclasses

    from cropray.errors import CroprayError
    from cropray.train.threshold import excluded_share, hold_back

    idx, drop = hold_back(crops.y, seed, paired=crops.plain == "paired")
    if len(idx) == 0:
        raise CroprayError("--target-fpr: the archive left no plain screened background to set the threshold on "
                           "(draw more with --archive-crops)")
    keep = np.setdiff1d(np.arange(len(crops.y)), drop)
    rest = dataclasses.replace(crops, x=crops.x[keep], y=crops.y[keep], _held={})  # the same plain mode, re-checked
    stored = 0 if crops.excluded_x is None else len(crops.excluded_x)
    ex = excluded_share(len(idx), crops.n_usable, crops.n_excluded, stored, seed)
    bg = crops.x[idx] if not len(ex) else np.concatenate([crops.x[idx], crops.excluded_x[ex]])
    return rest, bg
