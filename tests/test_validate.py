"""cropray.validate: the one field-metadata validator every config uses, and the CLI's field -> flag map."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pytest

from cropray.errors import ConfigError
from cropray.validate import REQUIRED, boolean, choice, describe, integer, mapping, number, pair, validate


@dataclass(frozen=True)
class _Toy:
    n: int = integer(REQUIRED, 1, 4096)  # a required bounded int
    rate: float | None = number(None, 0.0, 2.5, lo_open=True, nullable=True)
    kind: str = choice("a", ("a", "b"), accept=lambda v: v == "plugin")
    flag: bool = boolean(True)
    extra: dict = mapping(default_factory=dict)
    span: tuple[float, float] = pair((1.0, 2.0), 0.5)
    free: str = "anything"  # no rule: not checked

    def __post_init__(self):
        validate(self, "toy config")


def test_values_are_coerced_to_plain_python():
    t = _Toy(n=np.int64(7), rate=np.float32(0.5), span=[0.5, 3], kind="plugin", flag=np.bool_(False))
    assert (t.n, t.rate, t.span, t.kind, t.flag) == (7, 0.5, (0.5, 3.0), "plugin", False)
    assert type(t.n) is int and type(t.rate) is float and type(t.flag) is bool
    assert _Toy(n=16.0).n == 16 and type(_Toy(n=16.0).n) is int  # integral floats from samplers
    assert _Toy(n=3) == _Toy(n=3) and dataclasses.asdict(_Toy(n=3))["span"] == (1.0, 2.0)


@pytest.mark.parametrize("kw,field,reason", [
    ({"n": 0}, "n", "is out of range; valid: int in [1, 4,096]"),
    ({"n": 5000}, "n", "is out of range; valid: int in [1, 4,096]"),
    ({"n": 2.5}, "n", "is out of range"),
    ({"n": True}, "n", "is out of range"),  # a bool is not a number here
    ({"n": "3"}, "n", "is out of range"),  # no lax string parsing
    ({"n": None}, "n", "must not be null; valid: int in [1, 4,096]"),
    ({"n": 1, "rate": 0.0}, "rate", "valid: float in (0, 2.5]"),
    ({"n": 1, "rate": math.nan}, "rate", "is out of range"),
    ({"n": 1, "kind": "c"}, "kind", "is not valid; valid: a | b"),
    ({"n": 1, "flag": 1}, "flag", "must be true or false"),
    ({"n": 1, "extra": []}, "extra", "must be a JSON object"),
    ({"n": 1, "span": (3, 2)}, "span", "0.5 <= low <= high"),
    ({"n": 1, "span": (1, math.inf)}, "span", "both finite"),
    ({"n": 1, "span": 5}, "span", "a pair (low, high)"),
])
def test_a_refused_value_names_the_field_value_and_rule(kw, field, reason):
    with pytest.raises(ConfigError) as e:
        _Toy(**kw)
    assert e.value.field == field and reason in e.value.reason and reason in str(e.value)
    assert str(e.value).startswith(f"toy config {field!r} = {kw[field]!r} ")
    assert e.value.value is kw[field]


def test_describe_lists_every_ruled_field():
    text = describe(_Toy)
    assert "n: int in [1, 4,096]" in text and "rate: float in (0, 2.5]" in text and "kind: a | b" in text
    assert "free" not in text


def test_every_config_uses_the_validator():
    """Each *Config dataclass carries rules in its fields, and their refusals name a field."""
    from cropray.bench.config import BenchConfig
    from cropray.demo.config import DemoConfig
    from cropray.inject.config import InjectConfig
    from cropray.scoring.config import ScoreConfig
    from cropray.suggest.config import SuggestConfig
    from cropray.synth.config import SynthConfig
    from cropray.train.config import TrainConfig
    from cropray.train.self_train import SelfTrainConfig
    from cropray.tune.config import TuneConfig
    from cropray.validate import RULE

    bad = {BenchConfig: {"repeats": 0}, DemoConfig: {"top": 0}, SuggestConfig: {"n": 0},
           SynthConfig: {"ripple_max": 9.0}, TrainConfig: {"ema": 2.0}, TuneConfig: {"folds": 1},
           ScoreConfig: {"bundle": "b", "input": "i", "output": "o", "read_rows": 0},
           InjectConfig: {"real_share": 0.99}, SelfTrainConfig: {"tau": 1.0}}  # tau's interval is open
    for cls, kw in bad.items():
        assert any(RULE in f.metadata for f in dataclasses.fields(cls)), cls
        with pytest.raises(ConfigError) as e:
            cls(**kw)
        assert e.value.field in kw and e.value.reason, (cls, str(e.value))


def test_the_cli_names_the_flag_of_a_field(capsys):
    from cropray.cli import main

    assert main(["score", "M", "I", "O", "--cpus-per-actor", "0"]) == 2
    assert "--cpus-per-actor 0.0 is out of range; valid: float in (0, 1,024]" in capsys.readouterr().err
    assert main(["tune", "L", "--out", "O", "--fixed", '{"seed": 1}']) == 2
    assert "--fixed: sweep config fixed: seed cannot be fixed" in capsys.readouterr().err
    # a key of --config JSON names the JSON, not a flag
    assert main(["train", "L", "--out", "O", "--config", '{"epochs": 5000}']) == 2
    err = capsys.readouterr().err
    assert "--config {\"epochs\": 5000}: training config 'epochs' = 5000 is out of range" in err
