"""track_prior: the CNNs' de-Doppler logit term is exactly the dedoppler baseline's statistic."""

from __future__ import annotations

import pytest
import torch

from cropray.errors import ConfigError
from cropray.models import build_model
from cropray.models.track_prior import INIT_OFFSET, INIT_SCALE


def crops(b: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = 1e3 * torch.linspace(0.5, 1.5, 64) * torch.empty(b, 1, 64, 64).exponential_(generator=g)
    for t in range(64):  # a weak drifting track in the first crop
        x[0, 0, t, 10 + t // 3] += 1.5e3
    return x


@pytest.mark.parametrize("arch", ["shallow_cnn", "deep_cnn"])
def test_term_is_the_dedoppler_statistic_scaled(arch):
    torch.manual_seed(0)
    m = build_model(arch, track_prior=True).eval()
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
