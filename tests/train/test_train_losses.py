"""Losses against values worked out by hand."""

import math

import pytest
import torch

from cropray.train.config import TrainConfig
from cropray.train.losses import bce_loss, focal_loss, make_loss


def test_bce_hand_values():
    # logit 0 -> p = 0.5 -> -log 0.5 = ln 2 for either target
    assert bce_loss(torch.zeros(2), torch.tensor([0, 1])).item() == pytest.approx(math.log(2), abs=1e-6)
    # pos_weight 3 on the positive term only: (3 ln2 + ln2) / 2
    assert bce_loss(torch.zeros(2), torch.tensor([0, 1]), pos_weight=3.0).item() == pytest.approx(
        2 * math.log(2), abs=1e-6)


def test_focal_hand_values():
    x = torch.tensor([0.0, math.log(3.0)])  # p = 0.5, 0.75
    y = torch.tensor([1, 1])
    # (1-p)^2 * -log p  for each, averaged
    want = (0.25 * math.log(2) + 0.0625 * -math.log(0.75)) / 2
    assert focal_loss(x, y, gamma=2.0).item() == pytest.approx(want, abs=1e-6)
    # alpha 0.25 scales positives by 0.25
    assert focal_loss(x, y, gamma=2.0, alpha=0.25).item() == pytest.approx(0.25 * want, abs=1e-6)
    # negative with p = 0.75: p_t = 0.25 -> 0.75^2 * -log 0.25
    neg = focal_loss(torch.tensor([math.log(3.0)]), torch.tensor([0]), gamma=2.0).item()
    assert neg == pytest.approx(0.5625 * math.log(4), abs=1e-6)
    # gamma 0 is BCE
    z = torch.randn(16)
    t = (torch.rand(16) > 0.5).long()
    assert focal_loss(z, t, gamma=0.0).item() == pytest.approx(bce_loss(z, t).item(), abs=1e-6)


@pytest.mark.parametrize("gamma", [0.5, 0.92, 2.0])
def test_focal_gradient_is_finite_on_saturated_logits(gamma):
    # |logit| = 60: sigmoid is exactly 0/1 in float32, so 1 - p_t == 0; with gamma < 1 the unclamped
    # (1 - p_t)**gamma has an infinite derivative there and the step turned every weight into NaN.
    x = torch.tensor([60.0, -60.0, 0.3], requires_grad=True)
    focal_loss(x, torch.tensor([1, 0, 1]), gamma=gamma).backward()
    assert torch.isfinite(x.grad).all() and x.grad[2] < 0


def test_supcon_hand_value():
    # e1 = e2 = [1,0] (class 0), e3 = [0,1] (class 1), temperature 1:
    # anchors 1, 2: -log(e^1 / (e^1 + e^0)) = log(1+e) - 1; anchor 3 has no positive -> excluded.
    emb = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    loss = make_loss(TrainConfig(loss="supcon", temperature=1.0).resolve("siamese"))
    assert loss(emb, torch.tensor([0, 0, 1])).item() == pytest.approx(math.log(1 + math.e) - 1, abs=1e-5)


def test_contrastive_hand_value():
    # positives (1,2): d = |[0.4,-0.8]| = sqrt(0.8); negatives with margin 1: (2,3) d = sqrt(0.4) -> 1 - d,
    # (1,3) d = sqrt 2 > margin -> 0 (excluded by the non-zero average).
    emb = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    loss = make_loss(TrainConfig(loss="contrastive", margin=1.0).resolve("siamese"))
    want = math.sqrt(0.8) + (1 - math.sqrt(0.4))
    assert loss(emb, torch.tensor([0, 0, 1])).item() == pytest.approx(want, abs=1e-5)
