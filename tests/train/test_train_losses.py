"""Losses against values worked out by hand."""

import math

import pytest
import torch

from cropray.train.archive_data import PAIRED_COPY, PLAIN_COPY, UNLABELLED
from cropray.train.config import TrainConfig
from cropray.train.losses import bce_loss, focal_loss, make_loss, pair_rank_loss


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


def test_archive_codes_leave_plain_0_1_batches_unchanged():
    loss = make_loss(TrainConfig(loss="bce").resolve("shallow_cnn"), pos_weight=2.0, pu_prior=0.3)
    z, t = torch.randn(12), (torch.rand(12) > 0.5).long()
    assert loss(z, t).item() == pytest.approx(bce_loss(z, t, 2.0).item(), abs=1e-6)


def test_paired_loss_never_treats_the_plain_copy_as_a_negative():
    loss = make_loss(TrainConfig(loss="bce").resolve("shallow_cnn"))
    # a plain background that already holds a faint signal (logit +5) and its injected copy (+12)
    out = torch.tensor([5.0, 12.0], requires_grad=True)
    loss(out, torch.tensor([PLAIN_COPY, PAIRED_COPY])).backward()
    assert out.grad[0].item() == pytest.approx(torch.sigmoid(torch.tensor(-7.0)).item(), rel=1e-4)  # ~0.001
    assert out.grad[1].item() == pytest.approx(-out.grad[0].item())  # only the difference is asked for
    # the same plain crop as a BCE negative is pushed down ~1000x harder
    neg = torch.tensor([5.0], requires_grad=True)
    loss(neg, torch.tensor([0])).backward()
    assert neg.grad[0].item() > 500 * out.grad[0].item()
    # raising both copies together (a faint signal present in the background) costs nothing
    assert pair_rank_loss(torch.tensor([5.0]), torch.tensor([12.0])).item() == pytest.approx(
        pair_rank_loss(torch.tensor([-5.0]), torch.tensor([2.0])).item())
    # a pair out of order is pushed apart: plain down, injected up
    bad = torch.tensor([3.0, 1.0], requires_grad=True)
    loss(bad, torch.tensor([PLAIN_COPY, PAIRED_COPY])).backward()
    assert bad.grad[0] > 0.4 and bad.grad[1] < -0.4


def test_paired_terms_match_by_rank_and_average_with_labelled_crops():
    loss = make_loss(TrainConfig(loss="bce").resolve("shallow_cnn"))
    out = torch.tensor([0.0, 1.0, -2.0, 3.0, 0.5])  # one real crop, then plain copies, then injected copies
    y = torch.tensor([1, PLAIN_COPY, PLAIN_COPY, PAIRED_COPY, PAIRED_COPY])
    want = (math.log(2) + math.log1p(math.exp(1.0 - 3.0)) + math.log1p(math.exp(-2.0 - 0.5))) / 3
    assert loss(out, y).item() == pytest.approx(want, abs=1e-6)
    with pytest.raises(ValueError, match="2 plain copies but 1 injected"):
        loss(out[:4], y[:4])


def test_pu_risk_hand_value_and_non_negativity():
    cfg = TrainConfig(loss="bce").resolve("shallow_cnn")
    out = torch.tensor([0.0, math.log(3.0), 0.0])  # unlabelled at p = 1/2, a positive at p = 3/4, unlabelled
    y = torch.tensor([UNLABELLED, 1, UNLABELLED])
    l_u = math.log(2)  # mean over U of -log(1 - p)
    l_p_neg = math.log(4)  # the positive scored as a negative: -log(1/4)
    bce_pos = -math.log(0.75)
    want = (bce_pos + 2 * max(0.0, l_u - 0.2 * l_p_neg)) / 3
    assert make_loss(cfg, pu_prior=0.2)(out, y).item() == pytest.approx(want, abs=1e-6)
    assert make_loss(cfg, pu_prior=0.0)(out, y).item() == pytest.approx(
        bce_loss(out, torch.tensor([0, 1, 0])).item(), abs=1e-6)  # prior 0: plain negatives
    # a large prior would make the unlabelled risk negative: clamped at 0, no gradient pushes U up
    x = out.clone().requires_grad_(True)
    make_loss(cfg, pu_prior=0.9)(x, y).backward()
    assert x.grad[0].item() == 0.0 and x.grad[2].item() == 0.0


def test_metric_losses_refuse_unlabelled_archive_crops():
    loss = make_loss(TrainConfig(loss="supcon").resolve("siamese"))
    with pytest.raises(ValueError, match="0/1 labels"):
        loss(torch.nn.functional.normalize(torch.randn(3, 4), dim=1), torch.tensor([0, 1, UNLABELLED]))
