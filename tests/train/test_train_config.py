"""TrainConfig validation: unknown keys and out-of-range values are ConfigErrors naming them."""

import numpy as np
import pytest

from cropray.errors import ConfigError
from cropray.models import arch_spec
from cropray.train import TrainConfig


def test_round_trip_and_coercion():
    cfg = TrainConfig.from_dict({"lr": np.float32(0.01), "epochs": np.int64(7), "batch_size": 16.0})
    assert (cfg.epochs, cfg.batch_size) == (7, 16) and type(cfg.epochs) is int and type(cfg.lr) is float
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError, match="unknown training config key.*lrate.*valid keys: arch, seed"):
        TrainConfig.from_dict({"lrate": 0.1})


@pytest.mark.parametrize("key,value,hint", [
    ("lr", 5.0, r"float in \[1e-06, 1\]"), ("epochs", 2.5, r"int in \[0, 1,000\]"),
    ("dropout", -0.1, r"float in \[0, 0.95\]"), ("arch", "resnet", "auto | siamese"),
    ("augment", 1, "true or false"), ("seed", None, "must not be null"), ("batch_size", True, "int in"),
])
def test_out_of_range_names_key_and_range(key, value, hint):
    with pytest.raises(ConfigError, match=rf"'{key}'.*{hint}"):
        TrainConfig.from_dict({key: value})


def test_resolve_fills_arch_defaults_and_checks_loss():
    cfg = TrainConfig(lr=0.01).resolve("shallow_cnn")
    assert cfg.arch == "shallow_cnn" and cfg.lr == 0.01
    assert cfg.epochs == arch_spec("shallow_cnn").train_defaults["epochs"] and cfg.loss == "bce"
    assert TrainConfig().resolve("siamese").loss == "supcon"
    with pytest.raises(ConfigError, match="loss 'supcon' does not fit arch 'deep_cnn'"):
        TrainConfig(loss="supcon").resolve("deep_cnn")
    assert TrainConfig().replace(seed=None, epochs=3) == TrainConfig(epochs=3)  # None = keep
    with pytest.raises(ConfigError, match="must train for >= 1 epoch"):
        TrainConfig(epochs=0).resolve("shallow_cnn")
    assert TrainConfig(epochs=0).resolve("dedoppler").epochs == 0
