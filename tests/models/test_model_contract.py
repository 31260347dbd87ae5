"""Registry-driven contract tests: every registered model, whatever its family."""

from __future__ import annotations

import json

import pytest
import torch

from cropray.errors import ConfigError
from cropray.models import arch_spec, build_model, hparam_names, list_models, select_arch


def crops(b: int, seed: int = 0) -> torch.Tensor:
    """(b, 1, 64, 64) exponential noise (raw power, single-look) at an arbitrary level."""
    g = torch.Generator().manual_seed(seed)
    return 37.0 * torch.empty(b, 1, 64, 64).exponential_(generator=g)


def ready(name: str, **hp):
    """A model that can score: its finalize step (e.g. a Siamese gallery) run on 6 labelled crops."""
    torch.manual_seed(0)
    m = build_model(name, **hp)
    m.eval()
    with torch.no_grad():
        m.finalize([(crops(6, seed=1), torch.tensor([1, 0, 1, 0, 1, 0]))], lambda fn, x: fn(m.preprocess(x)))
    return m


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("batch", [2, 1])
def test_forward_shape_and_finite(name, batch):
    m = ready(name).eval()
    with torch.no_grad():
        y = m(crops(batch))
    assert y.shape == (batch,) and y.dtype == torch.float32
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("name", [n for n in list_models() if build_model(n).trainable])
def test_backward_reaches_every_parameter(name):
    m = ready(name).train()
    out = m.loss_inputs(m.preprocess(crops(2)))  # what the training loss consumes
    out.sum().backward()
    for pname, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    assert any(p.grad.abs().sum() > 0 for p in m.parameters())


def test_logit_models_score_is_sigmoid_of_logits():
    for name in [n for n in list_models() if arch_spec(n).loss_family == "logit"]:
        m = ready(name).eval()
        x = crops(3)
        with torch.no_grad():
            assert torch.allclose(m(x), torch.sigmoid(m.logits(x)))


def test_budgets_as_the_seed_design_card_sets_them():
    assert arch_spec("shallow_cnn").param_budget == (int(0.9 * 93_000), int(1.1 * 93_000))  # the seed's ~93K
    assert arch_spec("dedoppler").param_budget == (0, 0)  # label-free: nothing to train


@pytest.mark.parametrize("name", list_models())
def test_parameter_budget(name):
    n = sum(p.numel() for p in build_model(name).parameters())
    lo, hi = arch_spec(name).param_budget
    assert lo <= n <= hi, f"{name}: {n} parameters outside [{lo}, {hi}]"


def test_shallow_cnn_parameter_count_by_hand():
    # conv 1->32, 32->64, 64->128 (3x3, no bias: BN follows), BN (2 per channel), linear 128->1,
    # and the track prior's scale and offset
    convs = 9 * (1 * 32 + 32 * 64 + 64 * 128)
    bns = 2 * (32 + 64 + 128)
    assert sum(p.numel() for p in build_model("shallow_cnn").parameters()) == convs + bns + 129 + 2
    assert sum(p.numel() for p in build_model("shallow_cnn", track_prior=False).parameters()) == convs + bns + 129


@pytest.mark.parametrize("name", list_models())
def test_hparams_are_json_and_rebuild_the_model(name):
    m = build_model(name)
    hp = json.loads(json.dumps(m.hparams))
    m2 = build_model(m.arch_name, **hp)
    assert m2.hparams == m.hparams and m2.arch_name == name
    assert {k: v.shape for k, v in m2.state_dict().items()} == {k: v.shape for k, v in m.state_dict().items()}
    assert set(hparam_names(name)) == set(m.hparams)


@pytest.mark.parametrize("name", list_models())
def test_score_is_invariant_to_input_scale(name):
    m = ready(name).eval()
    x = crops(4, seed=3)
    with torch.no_grad():
        ref = m(x)
        for scale in (1e-3, 1e4):
            assert torch.allclose(m(x * scale), ref, atol=1e-4, rtol=1e-4), scale


def test_unknown_model_lists_valid_names():
    with pytest.raises(ConfigError, match="valid: dedoppler, deep_cnn, shallow_cnn, siamese"):
        build_model("resnet50")


def test_unknown_hparam_lists_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown hyperparameter\(s\) dropuot.*valid: .*dropout"):
        build_model("shallow_cnn", dropuot=0.1)


@pytest.mark.parametrize("name,hp", [("shallow_cnn", {"dropout": 1.0}), ("deep_cnn", {"width": 0}),
                                     ("siamese", {"rule": "vote"}), ("siamese", {"embedding_dim": 1.5}),
                                     ("dedoppler", {"widths": []}), ("shallow_cnn", {"compress": "log"}),
                                     ("shallow_cnn", {"flatten_window": 4})])
def test_out_of_range_hparams_are_config_errors(name, hp):
    with pytest.raises(ConfigError, match=next(iter(hp))):
        build_model(name, **hp)


@pytest.mark.parametrize("n,arch", [(25, "siamese"), (99, "siamese"), (100, "shallow_cnn"),
                                    (499, "shallow_cnn"), (500, "deep_cnn"), (10**6, "deep_cnn")])
def test_select_arch_regimes(n, arch):
    assert select_arch(n) == arch


def test_select_arch_refuses_too_few_labels():
    with pytest.raises(ConfigError, match=r"24 labelled crops found; training needs >= 25"):
        select_arch(24)
