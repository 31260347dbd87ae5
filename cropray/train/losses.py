"""Losses: BCE and focal loss on CNN logits, a metric-learning loss on Siamese embeddings.

Metric loss choice: supervised contrastive (SupCon, Khosla et al. 2020, `pytorch_metric_learning.losses.
SupConLoss`) by default rather than the seed's pairwise contrastive loss. With binary labels a batch of 32
gives every anchor ~15 positives and ~16 negatives at once, weighted by a temperature softmax so hard
pairs carry the gradient; the margin-based pairwise loss gives zero gradient to every negative already
beyond the margin and needs that margin tuned. The seed's loss stays available as `loss="contrastive"`
(pytorch-metric-learning's ContrastiveLoss, positive margin 0, negative margin `margin`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from pytorch_metric_learning import losses as pml_losses

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


def metric_loss(cfg: TrainConfig) -> LossFn:
    """The Siamese encoder's loss on (B, D) L2-normalised embeddings and (B,) integer labels."""
    if cfg.loss == "supcon":
        return pml_losses.SupConLoss(temperature=cfg.temperature)
    if cfg.loss == "contrastive":
        return pml_losses.ContrastiveLoss(pos_margin=0.0, neg_margin=cfg.margin)
    raise ValueError(f"{cfg.loss!r} is not a metric-learning loss")


def make_loss(cfg: TrainConfig, pos_weight: float | None = None) -> LossFn:
    """loss(output, target) for a resolved config: output = logits (B,) or embeddings (B, D)."""
    if cfg.loss == "bce":
        return lambda out, y: bce_loss(out, y, pos_weight)
    if cfg.loss == "focal":
        return lambda out, y: focal_loss(out, y, cfg.focal_gamma, cfg.focal_alpha, pos_weight)
    fn = metric_loss(cfg)
    return lambda emb, y: fn(emb, y.long())
