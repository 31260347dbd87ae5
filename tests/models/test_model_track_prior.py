"""track_prior: the CNNs' de-Doppler logit term is exactly the dedoppler baseline's statistic, and an
anchored CNN starts as that term (zero correction) and is pulled back toward it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from cropray.errors import ConfigError
from cropray.models import build_model
from cropray.models.track_prior import INIT_OFFSET, INIT_SCALE, SCALE_RANGE, logistic_fit
from cropray.synth import SynthConfig, generate
from cropray.train import TrainConfig
from cropray.train.loop import Trainer


def crops(b: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = 1e3 * torch.linspace(0.5, 1.5, 64) * torch.empty(b, 1, 64, 64).exponential_(generator=g)
    for t in range(64):  # a weak drifting track in the first crop
        x[0, 0, t, 10 + t // 3] += 1.5e3
    return x


@pytest.mark.parametrize("arch", ["shallow_cnn", "deep_cnn"])
def test_term_is_the_dedoppler_statistic_scaled(arch):
    torch.manual_seed(0)
    m = build_model(arch, track_prior=True, anchor=False).eval()  # a random head: the sum is not trivial
    assert m.hparams["track_prior"] is True and m.hparams["row_center"] is True  # the statistic needs it
    x = crops(6, seed=1)
    with torch.no_grad():
        dd = build_model("dedoppler")(x)  # (6,) the label-free baseline on raw crops
        term = m.track(m.preprocess(x))
        assert torch.allclose(term, INIT_SCALE * (dd - INIT_OFFSET), atol=1e-5)
        plain = m.head(m.pool(m.features(m.preprocess(x)) if arch == "shallow_cnn" else
                              m.stages(m.stem(m.preprocess(x)))).flatten(1)).squeeze(1)
        assert torch.allclose(m.logits(x), plain + term, atol=1e-5)
    assert dd[0] > dd[1:].max()  # the track crop stands out in the statistic


def test_prior_parameters_learn_and_are_in_the_state_dict():
    m = build_model("shallow_cnn", track_prior=True)
    assert {"track.scale", "track.offset"} <= set(m.state_dict())
    m.logits(crops(4, seed=2)).sum().backward()
    assert m.track.scale.grad is not None and m.track.offset.grad is not None
    assert "track.scale" not in build_model("shallow_cnn", track_prior=False).state_dict()


def test_hparam_checks():
    with pytest.raises(ConfigError, match="track_prior='yes' must be true or false"):
        build_model("deep_cnn", track_prior="yes")
    assert build_model("shallow_cnn", track_prior=True, row_center=False).hparams["row_center"] is False
    assert build_model("shallow_cnn", track_prior=False).hparams["row_center"] is False


@pytest.fixture(scope="module")
def synth():
    b = generate(300, SynthConfig(), seed=11)  # real generator crops, every kind of negative
    return torch.from_numpy(b.crops[:, None]), b.label.astype(np.int64)


@pytest.mark.parametrize("arch", ["shallow_cnn", "deep_cnn"])
def test_untrained_anchored_model_ranks_exactly_as_dedoppler(arch, synth):
    x, _ = synth
    torch.manual_seed(3)
    m = build_model(arch).eval()  # anchored by default
    assert m.hparams["anchor"] is True and m.hparams["anchor_l2"] > 0 and m.hparams["calibrate"] is True
    with torch.no_grad():
        dd = build_model("dedoppler")(x).numpy()
        logit = m.logits(x).numpy()
    assert np.array_equal(np.argsort(logit, kind="stable"), np.argsort(dd, kind="stable"))
    assert spearmanr(logit, dd).statistic == pytest.approx(1.0)
    # exactly an increasing affine function of the statistic: the correction is 0, not merely small
    np.testing.assert_allclose(logit, INIT_SCALE * (dd - INIT_OFFSET), atol=1e-5)
    # a random (unanchored) head does not rank as the statistic: the test can fail
    torch.manual_seed(3)
    free = build_model(arch, anchor=False).eval()
    with torch.no_grad():
        assert not np.array_equal(np.argsort(free.logits(x).numpy()), np.argsort(dd))


def test_penalty_is_zero_at_init_and_pulls_the_correction_toward_zero(synth):
    x, _ = synth
    torch.manual_seed(0)
    m = build_model("shallow_cnn", anchor_l2=1.0).train()
    m.logits(x[:16])
    assert m.anchor_penalty().item() == 0.0  # zero head: no correction, no penalty
    assert m.anchor_penalty() is None  # consumed: one penalty per training forward
    with torch.no_grad():  # a correction of +2 logits on every crop (head bias), as if learned
        m.head.bias.fill_(2.0)
    opt = torch.optim.SGD(m.head.parameters(), lr=0.1)
    m.logits(x[:16])
    pen = m.anchor_penalty()
    assert pen.item() == pytest.approx(4.0, rel=1e-5)  # 1.0 * mean(2^2)
    pen.backward()  # the penalty alone (no labels): one step moves the head toward zero
    opt.step()
    assert 0.0 <= m.head.bias.item() < 2.0
    m.eval()
    m.logits(x[:4])
    assert m.anchor_penalty() is None  # scoring records nothing
    assert build_model("shallow_cnn", anchor=False).train().logits(x[:4]) is not None
    unanchored = build_model("shallow_cnn", anchor=False).train()
    unanchored.logits(x[:4])
    assert unanchored.anchor_penalty() is None


def test_trainer_calibrates_the_prior_on_the_training_split(synth):
    x, y = synth
    cfg = TrainConfig(arch="shallow_cnn", epochs=1, epoch_crops=16, batch_size=8).resolve("shallow_cnn")
    t = Trainer(cfg, x[:60].numpy(), y[:60])
    cal = t.prior_calibration
    assert cal["calibrated"] and cal["n"] == 60
    assert SCALE_RANGE[0] <= cal["scale"] <= SCALE_RANGE[1]
    assert float(t.net.track.scale) == pytest.approx(cal["scale"], abs=1e-4) and float(t.model.track.offset) == pytest.approx(
        cal["offset"])  # the kept (EMA) copy starts there too
    with torch.no_grad():
        dd = build_model("dedoppler")(x).numpy()
        t.model.eval()
        logit = t.model.logits(x).numpy()
    np.testing.assert_allclose(logit, cal["scale"] * (dd - cal["offset"]), atol=1e-4)  # still pure physics
    off = Trainer(cfg.replace(model_kwargs={"calibrate": False}), x[:60].numpy(), y[:60])
    assert off.prior_calibration is None and float(off.net.track.scale) == INIT_SCALE


def test_logistic_fit_degenerate_cases():
    s = np.array([1.0, 2.0, 3.0, 8.0, 9.0, 10.0])
    scale, offset = logistic_fit(s, np.array([0, 0, 0, 1, 1, 1]))
    assert scale > 0 and 3.0 < offset < 8.0  # crosses 1/2 between the classes
    assert logistic_fit(s, np.ones(6)) is None  # one class
    assert logistic_fit(s, np.array([1, 1, 1, 0, 0, 0])) is None  # labels fall with the statistic
    big = logistic_fit(np.r_[np.zeros(50), 1e-3 + np.zeros(50)], np.r_[np.zeros(50), np.ones(50)])
    assert big is None or big[0] <= SCALE_RANGE[1]


def test_anchoring_hparams_are_validated():
    with pytest.raises(ConfigError, match="anchor_l2=-1"):
        build_model("shallow_cnn", anchor_l2=-1)
    with pytest.raises(ConfigError, match="anchor=1 must be true or false"):
        build_model("deep_cnn", anchor=1)
    with pytest.raises(ConfigError, match="calibrate='no'"):
        build_model("shallow_cnn", calibrate="no")


def test_trainer_adds_the_penalty_so_a_strong_anchor_keeps_the_correction_small(synth):
    x, y = synth
    cfg = TrainConfig(arch="shallow_cnn", epochs=2, epoch_crops=64, batch_size=16, ema=0.0, augment=False,
                      model_kwargs={"calibrate": False}).resolve("shallow_cnn")

    def correction(l2: float) -> float:
        t = Trainer(cfg.replace(model_kwargs={"calibrate": False, "anchor_l2": l2}), x[:40].numpy(), y[:40])
        while not t.done:
            t.run_epoch()
        m = t.model.eval()
        with torch.no_grad():
            z = m.preprocess(x[40:120])
            return float((m.logits_normalised(z) - m.track(z)).abs().mean())  # (80,) -> mean |correction|

    free, pulled = correction(0.0), correction(100.0)
    assert free > 0.05 and pulled < 0.25 * free, (free, pulled)

