"""Search spaces as data: conditional parameters, defaults = library defaults, regimes, samplers."""

import json

import numpy as np
import optuna
import pytest

from cropray.errors import ConfigError
from cropray.models import arch_spec, build_model, hparam_names, list_models, select_arch
from cropray.train import TrainConfig
from cropray.train.loop import model_hparams
from cropray.tune import TuneConfig
from cropray.tune.search import RandomSearch
from cropray.tune.spaces import (
    REGIME_BOUNDS,
    SPACES,
    RandomTrial,
    choose_regime,
    default_point,
    sample,
    scaled_augment,
    train_dict,
)
from cropray.tune.trainable import build_train_config, check_fixed

# Parameters each architecture must get, and may get only when it is drawn (branch-path names).
OWN = {"siamese": {"embedding_dim"}, "deep_cnn": {"width", "depth"}, "shallow_cnn": set()}


def _optuna_points(regime: str, n: int, seed: int) -> list[dict]:
    """n points from TPE over the define-by-run space (told random values so TPE leaves start-up)."""
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=5),
                                direction="maximize")
    rng = np.random.default_rng(seed)
    points = []
    for _ in range(n):
        trial = study.ask()
        sample(SPACES[regime], trial)
        points.append(dict(trial.params))
        study.tell(trial, float(rng.uniform()))
    return points


def _random_points(regime: str, n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [sample(SPACES[regime], RandomTrial(rng)) for _ in range(n)]


@pytest.mark.parametrize("regime", list(SPACES))
@pytest.mark.parametrize("sampler", ["random", "optuna"])
def test_conditional_parameters_only_for_their_architecture(regime, sampler):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    points = (_random_points(regime, 300, 1) if sampler == "random" else _optuna_points(regime, 60, 2))
    archs_seen = set()
    for p in points:
        arch = p["arch"]
        archs_seen.add(arch)
        branched = [k for k in p if "." in k]
        assert all(k.startswith(arch + ".") for k in branched), (arch, p)
        # Nested branches: a loss's parameter only with that loss.
        for k in branched:
            parts = k.split(".")
            if len(parts) == 3:
                assert p[f"{parts[0]}.loss"] == parts[1], p
        cfg = build_train_config(p, regime, TuneConfig(regime=regime))
        assert cfg.arch == arch
        hp = model_hparams(cfg.resolve(arch))
        assert set(hp) <= set(hparam_names(arch))  # nothing sampled that the model would not take
        for other, own in OWN.items():
            if other != arch:
                assert not (own - OWN[arch]) & set(hp), (arch, hp)
        if arch_spec(arch).loss_family == "logit":  # no metric-learning keys drawn for a logit model
            assert cfg.embedding_dim is None and cfg.resolve(arch).loss in ("bce", "focal")
        lo_hi = {k: v for k, v in p.items() if isinstance(v, float)}
        assert all(np.isfinite(v) for v in lo_hi.values())
    assert archs_seen == set(SPACES[regime]["arch"].options)  # every branch gets drawn
    assert set(SPACES[regime]["arch"].options) == {a for a in list_models() if regime in arch_spec(a).regimes}


@pytest.mark.parametrize("regime", list(SPACES))
def test_default_point_is_the_library_default(regime):
    lo = REGIME_BOUNDS[regime][0]
    arch = select_arch(lo)
    assert SPACES[regime]["arch"].default == arch
    tc = build_train_config(default_point(SPACES[regime]), regime, TuneConfig(regime=regime, epochs=7))
    ref = TrainConfig(arch=arch, epochs=7, device="cpu").resolve(arch)
    got = tc.resolve(arch)
    skip = {"dropout", "embedding_dim", "model_kwargs"}  # None in the library = the model's default
    assert {k: v for k, v in got.to_dict().items() if k not in skip} == \
        {k: v for k, v in ref.to_dict().items() if k not in skip}
    assert build_model(arch, **model_hparams(got)).hparams == build_model(arch, **model_hparams(ref)).hparams


def test_regime_bounds_match_select_arch_and_choose_regime():
    for regime, (lo, hi) in REGIME_BOUNDS.items():
        for n in (lo, hi or 5000):
            assert choose_regime("auto", n) == (regime, None)
            assert select_arch(n) == SPACES[regime]["arch"].default
    with pytest.raises(ConfigError, match="24 labelled crops.*>= 25"):
        choose_regime("auto", 24)
    with pytest.raises(ConfigError, match="not valid"):
        choose_regime("lots", 300)
    regime, warning = choose_regime("many", 60)
    assert regime == "many" and "forced" in warning and "'few'" in warning


def test_train_dict_refuses_parameters_outside_the_drawn_branch():
    p = default_point(SPACES["mid"])  # shallow_cnn
    with pytest.raises(ConfigError, match="siamese.embedding_dim"):
        train_dict(SPACES["mid"], {**p, "siamese.embedding_dim": 32})


def test_augment_strength_scales_the_defaults():
    base = TrainConfig()
    assert scaled_augment(1.0) == {"augment": True, "aug_freq_roll": base.aug_freq_roll,
                                   "aug_time_shift": base.aug_time_shift, "aug_noise": base.aug_noise,
                                   "aug_level_decades": base.aug_level_decades, "aug_tilt": base.aug_tilt}
    assert scaled_augment(0.0) == {"augment": False}
    TrainConfig(**scaled_augment(2.0))  # the top of the range is valid


def test_random_search_state_round_trips_as_json(tmp_path):
    a = RandomSearch("many", seed=3, points_to_evaluate=[default_point(SPACES["many"])])
    first = [a.suggest(str(i)) for i in range(3)]
    assert first[0] == default_point(SPACES["many"])
    a.save(str(tmp_path / "s.json"))
    json.loads((tmp_path / "s.json").read_text())  # JSON, not pickle
    b = RandomSearch("many", seed=99)
    b.restore(str(tmp_path / "s.json"))
    assert [a.suggest("x") for _ in range(3)] == [b.suggest("y") for _ in range(3)]


def test_tune_config_and_fixed_validation():
    with pytest.raises(ConfigError, match="samples"):
        TuneConfig(samples=0)
    with pytest.raises(ConfigError, match="metric"):
        TuneConfig(metric="loss")
    with pytest.raises(ConfigError, match="grace_epochs"):
        TuneConfig(epochs=2, grace_epochs=3)
    with pytest.raises(ConfigError, match="cannot be fixed"):
        TuneConfig(fixed={"arch": "deep_cnn"})
    assert TuneConfig.from_dict(TuneConfig(seed=4).to_dict()) == TuneConfig(seed=4)
    with pytest.raises(ConfigError, match="'lr' is searched"):
        check_fixed(TuneConfig(fixed={"lr": 0.1}), "few")
    with pytest.raises(ConfigError, match="width is searched"):
        check_fixed(TuneConfig(fixed={"deep_cnn": {"width": 8}}), "many")
    with pytest.raises(ConfigError, match="unknown hyperparameter.*chanels"):
        check_fixed(TuneConfig(fixed={"shallow_cnn": {"chanels": [8, 8, 8]}}), "mid")
    with pytest.raises(ConfigError, match="batch_size"):
        check_fixed(TuneConfig(fixed={"batch_size": 1}), "mid")
    check_fixed(TuneConfig(fixed={"batch_size": 16, "deep_cnn": {"width": 8}}), "mid")
