"""Losses: BCE and focal loss on CNN logits, a metric-learning loss on Siamese embeddings.

Metric loss choice: supervised contrastive (SupCon, Khosla et al. 2020, `pytorch_metric_learning.losses.
SupConLoss`) by default rather than the seed's pairwise contrastive loss. With binary labels a batch of 32
gives every anchor ~15 positives and ~16 negatives at once, weighted by a temperature softmax so hard
pairs carry the gradient; the margin-based pairwise loss gives zero gradient to every negative already
beyond the margin and needs that margin tuned. The seed's loss stays available as `loss="contrastive"`
(pytorch-metric-learning's ContrastiveLoss, positive margin 0, negative margin `margin`).

Archive crops (cropray.train.archive_data) add label codes beside 0/1 for logit models, so a plain
archive background of unknown content never becomes a confident negative (`archive_logit_loss`):
UNLABELLED (-1) crops enter a non-negative PU risk, and a PLAIN_COPY (-2) / PAIRED_COPY (2) pair only
asks that the injected copy score higher than the plain one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses as pml_losses

from cropray.train.archive_data import PAIRED_COPY, PLAIN_COPY, UNLABELLED
from cropray.train.config import TrainConfig

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def bce_loss(logits: torch.Tensor, target: torch.Tensor, pos_weight: float | None = None) -> torch.Tensor:
    """Mean binary cross-entropy on logits (B,), targets (B,) in {0,1}; positives weighted by pos_weight."""
    pw = None if pos_weight is None else torch.as_tensor(pos_weight, dtype=logits.dtype, device=logits.device)
    return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype), pos_weight=pw)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, alpha: float | None = None,
               pos_weight: float | None = None) -> torch.Tensor:
    """Mean sigmoid focal loss (Lin et al. 2017): BCE scaled by (1 - p_t)**gamma, easy crops fade out.

    alpha (optional) weighs positives by alpha and negatives by 1 - alpha (torchvision's convention);
    pos_weight (optional) multiplies the positives' terms, like BCE's pos_weight. gamma=0 is plain BCE.
    """
    t = target.to(logits.dtype)
    ce = F.binary_cross_entropy_with_logits(logits, t, reduction="none")  # (B,)
    p = torch.sigmoid(logits)
    p_t = p * t + (1 - p) * (1 - t)
    # Clamped: a saturated correct crop has 1 - p_t == 0 exactly in float32 (|logit| > ~17, common with
    # the track prior on bright tracks), and d/dx x**gamma is infinite at 0 for gamma < 1: inf * 0 = NaN
    # gradients killed every focal trial with gamma < 1 in a 1,000-label sweep. 1e-12**gamma is ~0 anyway.
    loss = ce * (1 - p_t).clamp_min(1e-12) ** gamma
    if alpha is not None:
        loss = loss * (alpha * t + (1 - alpha) * (1 - t))
    if pos_weight is not None:
        loss = loss * (1 + (pos_weight - 1) * t)
    return loss.mean()


def pair_rank_loss(plain: torch.Tensor, injected: torch.Tensor) -> torch.Tensor:
    """(P,) softplus(logit_plain - logit_injected), per pair: the logistic loss of ranking the injected
    copy above its own plain background. Its gradient on the plain logit is sigmoid(plain - injected):
    ~0 once the injected copy is well above, whatever the plain copy's own level (a faint signal it
    holds is in both copies) -- unlike BCE with label 0, whose gradient sigmoid(plain) pushes every
    plain background toward -inf."""
    return F.softplus(plain - injected)


def archive_logit_loss(base: LossFn, pu_prior: float = 0.0) -> LossFn:
    """loss(logits (B,), codes (B,)) for batches that may hold archive crops.

    codes 0/1: `base` (BCE or focal) per crop; UNLABELLED: the non-negative PU risk (Kiryo et al.
    2017) max(0, mean_U l(s, 0) - pu_prior * mean_P l(s, 0)), P = the batch's positives, counted as
    one term per unlabelled crop (pu_prior 0: they are plain negatives); PLAIN_COPY/PAIRED_COPY: one
    `pair_rank_loss` term per pair (the k-th plain copy pairs with the k-th injected copy). The mean
    is over crops/terms, so a batch of 0/1 codes gives exactly `base`.
    """

    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        known = (y == 0) | (y == 1)
        if bool(known.all()):
            return base(out, y)
        terms, count = out.new_zeros(()), 0
        if bool(known.any()):
            n = int(known.sum())
            terms = terms + base(out[known], y[known]) * n
            count += n
        unl = y == UNLABELLED
        if bool(unl.any()):
            n = int(unl.sum())
            neg_u = F.binary_cross_entropy_with_logits(out[unl], torch.zeros_like(out[unl]))  # mean_U l(s, 0)
            pos = y == 1
            neg_p = F.binary_cross_entropy_with_logits(out[pos], torch.zeros_like(out[pos])) if bool(pos.any()) \
                else out.new_zeros(())
            terms = terms + torch.clamp_min(neg_u - pu_prior * neg_p, 0.0) * n
            count += n
        plain, inj = out[y == PLAIN_COPY], out[y == PAIRED_COPY]  # (P,), (P,) in the same pair order
        if len(plain):
            if len(plain) != len(inj):
                raise ValueError(f"{len(plain)} plain copies but {len(inj)} injected copies in a batch")
            terms = terms + pair_rank_loss(plain, inj).sum()
            count += len(plain)
        return terms / max(1, count)

    return loss


def metric_loss(cfg: TrainConfig) -> LossFn:
    """The Siamese encoder's loss on (B, D) L2-normalised embeddings and (B,) integer labels."""
    if cfg.loss == "supcon":
        return pml_losses.SupConLoss(temperature=cfg.temperature)
    if cfg.loss == "contrastive":
        return pml_losses.ContrastiveLoss(pos_margin=0.0, neg_margin=cfg.margin)
    raise ValueError(f"{cfg.loss!r} is not a metric-learning loss")


def make_loss(cfg: TrainConfig, pos_weight: float | None = None, *, pu_prior: float = 0.0) -> LossFn:
    """loss(output, target) for a resolved config: output = logits (B,) or embeddings (B, D).

    Logit losses accept the archive label codes (`archive_logit_loss`; pu_prior for UNLABELLED crops);
    the metric losses take 0/1 labels only (an archive crop of unknown content has no class to embed)."""
    if cfg.loss == "bce":
        return archive_logit_loss(lambda out, y: bce_loss(out, y, pos_weight), pu_prior)
    if cfg.loss == "focal":
        return archive_logit_loss(lambda out, y: focal_loss(out, y, cfg.focal_gamma, cfg.focal_alpha, pos_weight),
                                  pu_prior)
    fn = metric_loss(cfg)

    def metric(emb: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if bool(((y != 0) & (y != 1)).any()):
            raise ValueError("a metric-learning loss needs 0/1 labels; archive crops of unknown content "
                             "(plain='pu' or 'paired') train logit models only")
        return fn(emb, y.long())

    return metric
