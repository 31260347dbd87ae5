"""Every size flag is bounded: an absurd value is exit 2 with the bound in the message,
naming the flag at the command line and the config field in the library, before anything is allocated."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cropray.cli import main
from cropray.errors import ConfigError


@pytest.mark.parametrize("argv,needle", [
    (["score", "M", "IN", "OUT", "--model-batch", "1000000000"], "--model-batch must be between 1 and 4,096"),
    (["score", "M", "IN", "OUT", "--batch-size", "1000000000"], "--batch-size must be between 1 and 65,536"),
    (["score", "M", "IN", "OUT", "--unit-rows", "99999999999"], "--unit-rows must be between 1 and 16,777,216"),
    (["synth", "OUT", "--n", "100", "--files", "1000000"], "--files must be between 1 and 100,000"),
    (["tune", "L", "--out", "O", "--samples", "99999999"], "--samples must be between 1 and 10,000"),
    (["tune", "L", "--out", "O", "--epochs", "1000000"], "--epochs must be between 1 and 1,000"),
    (["tune", "L", "--out", "O", "--max-concurrent", "99999999"], "--max-concurrent must be between 1 and 10,000"),
    (["tune", "L", "--out", "O", "--folds", "1000"], "--folds must be between 1 and 100"),
    (["tune", "L", "--out", "O", "--seed", "99999999999"], "--seed must be between 0 and 2,147,483,647"),
    (["tune", "L", "--out", "O", "--time-budget", "1e300"], "--time-budget must be > 0 and <= 2,592,000"),
])
def test_an_absurd_size_flag_exits_2_with_the_bound(argv, needle, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err, err


def test_synth_n_beyond_the_bound_exits_2_at_once(tmp_path):
    # Before the bound this started writing 10^20 crops; a real process, so a hang shows as a timeout.
    r = subprocess.run([sys.executable, "-m", "cropray", "synth", str(tmp_path / "o"), "--n", "99999999999999999999"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--n must be between 1 and 100,000,000" in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()


def test_library_configs_name_the_field_and_the_bound(tmp_path):
    from cropray.scoring.config import ScoreConfig, parse_actors
    from cropray.synth import SynthConfig, synth_archive
    from cropray.tune.config import TuneConfig

    cases = [
        (lambda: ScoreConfig(bundle="m", input="i", output="o", model_batch=10**9), "model_batch", "4,096"),
        (lambda: ScoreConfig(bundle="m", input="i", output="o", batch_size=10**9), "batch_size", "65,536"),
        (lambda: ScoreConfig(bundle="m", input="i", output="o", num_gpus=1e9), "num_gpus", "16"),
        (lambda: parse_actors("1,99999999"), "--actors", "4096"),
        (lambda: synth_archive(tmp_path / "s", 10**20), "n must be", "100,000,000"),
        (lambda: synth_archive(tmp_path / "s", 10, files=10**6), "files must be", "[1, 10]"),
        (lambda: SynthConfig(time_bins=10**6), "time_bins", "4,096"),
        (lambda: TuneConfig(samples=10**9), "samples", "10,000"),
        (lambda: TuneConfig(epochs=10**9), "epochs", "1,000"),
        (lambda: TuneConfig(cpus_per_trial=1e9), "cpus_per_trial", "1,024"),
        (lambda: TuneConfig(time_budget_s=float("nan")), "time_budget_s", "2,592,000"),
    ]
    for make, field, bound in cases:
        with pytest.raises(ConfigError) as e:
            make()
        assert field in str(e.value) and bound in str(e.value), str(e.value)
    assert not (tmp_path / "s").exists()
