"""`fit`: train one model on a labelled set (early stopping on a stratified validation split)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from cropray.errors import CroprayError
from cropray.models.policy import MIN_LABELS, label_free, select_arch
from cropray.train.config import TrainConfig
from cropray.train.progress import Progress

if TYPE_CHECKING:  # torch only when training: `from cropray.train import fit` stays cheap
    from torch import nn

    from cropray.train.loop import EpochStats


@dataclass
class FitResult:
    model: nn.Module  # eval mode, best weights, Siamese gallery set
    history: list[EpochStats]
    best_epoch: int  # epochs trained to reach the kept weights (0 for untrained baselines)
    cfg: TrainConfig  # the resolved configuration used
    seconds: float
    val_scores: np.ndarray | None = None  # (V,) scores of the validation split, when there was one
    val_labels: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


def check_labels(y, where: str = "labelled set") -> dict[int, int]:
    """Class counts; CroprayError when training is impossible (< MIN_LABELS or one class)."""
    y = np.asarray(y)
    counts = {0: int((y == 0).sum()), 1: int((y == 1).sum())}
    found = f"found {counts[1]} signal (label 1) and {counts[0]} non-signal (label 0) crops"
    free = " / ".join(repr(n) for n in label_free())
    if min(counts.values()) == 0:
        raise CroprayError(f"{where}: {found}; training needs both classes - label some crops of the "
                           f"missing class (or score with the label-free {free} baseline)")
    if len(y) < MIN_LABELS:
        raise CroprayError(f"{where}: {found} ({len(y)} in all); training needs >= {MIN_LABELS} labels "
                           f"- label {MIN_LABELS - len(y)} more (or use the label-free {free} baseline)")
    return counts


def resolve(cfg: TrainConfig, n_labels: int) -> TrainConfig:
    """Concrete config: `auto` picks the architecture by label count; the training
    budget is scaled to the label count (cropray.train.budget)."""
    return cfg.resolve(select_arch(n_labels) if cfg.arch == "auto" else cfg.arch, n_labels)


def stratified_split(y, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, val_idx): a seeded stratified split. Each class with >= 2 crops puts
    max(1, round(fraction * count)) in validation and keeps >= 1 for training (fraction <= 0.5); a class
    with one crop stays in training, so a validation split can lack a class (then only its loss counts).
    """
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    va = [np.zeros(0, np.int64)]
    for c in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == c))
        if len(idx) >= 2:
            va.append(idx[: max(1, round(fraction * len(idx)))])
    va = np.sort(np.concatenate(va))
    return np.setdiff1d(np.arange(len(y)), va), va


def progress_bar(total: int, desc: str, progress: bool | None) -> Progress:
    """Epoch progress with tqdm's `update(1)` / `set_postfix`: a bar on a terminal, plain lines
    elsewhere, nothing when progress is False (cropray.train.progress)."""
    return Progress(total, desc, progress)


def fit(cfg: TrainConfig, x, y, *, x_val=None, y_val=None, epochs: int | None = None,
        progress: bool | None = None, on_epoch: Callable[[EpochStats], object] | None = None,
        extra=None, stage: str | None = None) -> FitResult:
    """Train one model on x (N, 1, H, W) raw power, y (N,) in {0, 1}.

    Validation: (x_val, y_val) when given; else, when `epochs` is None, a stratified `cfg.val_fraction`
    split of (x, y) drives early stopping (best weights restored); with `epochs` given and no validation
    set, all crops train for exactly that many epochs (the refit after cross-validation).
    progress: cropray.train.progress (bar on a terminal, plain lines elsewhere, False = silent);
    stage names it there (default "train ARCH").
    """
    from cropray.train.loop import Trainer

    t0 = time.perf_counter()
    y = np.asarray(y).astype(np.int64)
    cfg = resolve(cfg, len(y))
    if epochs is not None:
        cfg = cfg.replace(epochs=int(epochs))
    if x_val is None and epochs is None and cfg.epochs > 0:
        tr, va = stratified_split(y, cfg.val_fraction, cfg.seed)
        x, x_val, y, y_val = x[tr], x[va], y[tr], y[va]
    tr = Trainer(cfg, x, y, x_val, y_val, extra=extra)  # extra: training-only archive crops (ExtraCrops)
    with Progress(cfg.epochs, stage or f"train {cfg.arch}", progress) as bar:
        while not tr.done:
            st = tr.run_epoch()
            bar.tick(st.epoch)
            bar.epoch_done(loss=f"{st.train_loss:.3f}", val_auc="-" if st.val_auc is None else f"{st.val_auc:.3f}")
            if on_epoch is not None and on_epoch(st):
                break
    tr.use_best()
    val_scores = tr.predict(x_val) if tr.has_val else None
    return FitResult(model=tr.model, history=tr.history, best_epoch=tr.best_epoch, cfg=cfg,
                     seconds=time.perf_counter() - t0, val_scores=val_scores,
                     val_labels=None if y_val is None else np.asarray(y_val))
