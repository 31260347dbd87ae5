"""Self-training on unlabelled archive crops: FixMatch-style pseudo-labels, run as offline rounds.

FixMatch (Sohn et al. 2020) labels an unlabelled crop by the model's prediction on a weakly augmented
view when that prediction is confident (probability above a threshold tau), and trains the model to
give the same answer on a strongly augmented view. Here, per round:
  1. the current model (the teacher, trained on the labels + whatever extra crops it had) scores
     `views` weakly augmented views of every pool crop (frequency roll/flip, small time roll, tilt);
  2. a crop gets a pseudo-label only when *every* view agrees with confidence: p > tau (signal) or
     p < 1 - tau (not) -- the consistency condition, stricter than FixMatch's single view;
  3. the student is trained from scratch on the labels + extra crops + the pseudo-labelled crops,
     each seen through the trainer's full augmentation (the strong view).
Offline rounds instead of FixMatch's per-batch pseudo-labels keep the trainer unchanged (no second
loss term) and make each round's pseudo-labels inspectable. At most `max_pseudo` crops per class are
kept (the most confident), so one class cannot flood training. Logit models only: their sigmoid is a
probability; metric models (the Siamese gallery score) have no calibrated confidence.

`cropray train --self-train` (cropray.train.self_train_cv) runs these rounds once per CV fold, each
fold with its own teacher, so the cross-validated figures stay honest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cropray.inject.config import InjectConfig
from cropray.models.policy import check_logit
from cropray.train.archive_data import ExtraCrops
from cropray.train.config import TrainConfig
from cropray.train.fit import fit, resolve
from cropray.validate import integer, number, validate

PER_EPOCH = InjectConfig().per_epoch  # archive crops per epoch without an inject config: the same default
WEAK = dict(aug_noise=0.0, aug_level_decades=0.0, aug_time_shift=2)  # weak views: geometry only, no added noise


@dataclass(frozen=True)
class SelfTrainConfig:
    rounds: int = integer(1, 1, 5)  # teacher -> student rounds
    tau: float = number(0.95, 0.5, 1.0, lo_open=True, hi_open=True)  # confidence threshold on sigmoid(logit),
    #   both classes
    views: int = integer(4, 1, 16)  # weakly augmented views that must all agree
    max_pseudo: int = integer(1000, 1)  # pseudo-labelled crops kept per class per round (the most confident)
    pool: int = integer(4000, 1, 2_000_000)  # archive crops offered for pseudo-labels (`cropray train`;
    #   ~16 KB each in memory at 64x64)
    seed: int = integer(0, 0)  # the weak views and the student's training

    def __post_init__(self):
        validate(self, "self-training config")  # each field's rule (cropray.validate)


def weak_probabilities(model, pool: np.ndarray, cfg: TrainConfig, views: int, seed: int) -> np.ndarray:
    """(views, P) probabilities of weakly augmented views of pool (P, 1, H, W) raw crops: a logit
    model's score is already sigmoid(logit) (its ArchSpec's score_range (0, 1))."""
    import torch

    from cropray.train.augment import SpectrogramAugment

    aug = SpectrogramAugment(cfg.replace(**WEAK), "raw")
    gen = torch.Generator().manual_seed(int(seed))
    out = np.empty((views, len(pool)), np.float32)
    model.eval()
    dev = next(iter(model.parameters()), torch.zeros(0)).device  # a fold model may live on the GPU
    with torch.inference_mode():
        for v in range(views):
            for i in range(0, len(pool), 512):
                xb = torch.from_numpy(np.ascontiguousarray(pool[i:i + 512], np.float32))
                xb = aug(xb, gen) if v > 0 else xb  # view 0: the crop itself
                out[v, i:i + 512] = model(xb.to(dev)).float().cpu().numpy()  # logit models score sigmoid(logit)
    return out


def pseudo_label(p: np.ndarray, tau: float, max_pseudo: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, labels) of pool crops whose every view is confident and agrees; p (views, P)."""
    pos = (p > tau).all(axis=0)
    neg = (p < 1 - tau).all(axis=0)
    conf = p.min(axis=0), 1 - p.max(axis=0)  # the weakest view's confidence per class
    keep = []
    for mask, c, label in ((pos, conf[0], 1), (neg, conf[1], 0)):
        idx = np.flatnonzero(mask)
        keep.append((idx[np.argsort(-c[idx], kind="stable")[:max_pseudo]], label))
    idx = np.concatenate([k for k, _ in keep])
    return idx, np.concatenate([np.full(len(k), lab, np.int64) for k, lab in keep])


def with_pseudo(extra: ExtraCrops | None, xs: np.ndarray, ys: np.ndarray, real_share: float,
                per_epoch: int) -> ExtraCrops:
    """Training-only crops: `extra` (injected + plain backgrounds, if any) plus pseudo-labelled pool crops.

    Pseudo-labelled crops are single crops with a 0/1 label, so a paired `extra` joins them as "pu"
    (its plain copies stay unlabelled, its injected copies stay positives; the pairing is dropped)."""
    plain, pu_prior = "negative", 0.2
    if extra is not None:
        xs, ys = np.concatenate([extra.x, xs]), np.concatenate([extra.y, ys])
        real_share, per_epoch, pu_prior = extra.real_share, extra.per_epoch, extra.pu_prior
        plain = "pu" if extra.plain in ("pu", "paired") else "negative"
    return ExtraCrops(xs, ys, real_share, per_epoch, plain=plain, pu_prior=pu_prior)


def round_counts(r: int, pool: np.ndarray, lab: np.ndarray) -> dict:
    return {"round": r, "pool": int(len(pool)), "pseudo_signal": int((lab == 1).sum()),
            "pseudo_not": int((lab == 0).sum())}


def self_train(cfg: TrainConfig, x, y, pool: np.ndarray, st: SelfTrainConfig, *, extra: ExtraCrops | None = None,
               real_share: float = 0.5, per_epoch: int = PER_EPOCH, progress=None):
    """Teacher on (x, y) [+ extra], then `st.rounds` student rounds with pseudo-labelled pool crops.

    Returns (FitResult of the last student, info dict: pseudo-label counts per round)."""
    rcfg = resolve(cfg, len(y))
    check_logit(rcfg.arch)
    res = fit(rcfg, x, y, extra=extra, progress=progress)
    info = []
    for r in range(st.rounds):
        p = weak_probabilities(res.model, pool, rcfg, st.views, st.seed + r)
        idx, lab = pseudo_label(p, st.tau, st.max_pseudo)
        info.append(round_counts(r + 1, pool, lab))
        if len(idx) == 0:
            break
        res = fit(rcfg, x, y, extra=with_pseudo(extra, pool[idx], lab, real_share, per_epoch), progress=progress)
    return res, {"rounds": info, "tau": st.tau, "views": st.views}
