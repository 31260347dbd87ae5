"""What a resumed sweep is rebuilt from: the searchers continue instead of repeating, and the records
are checked (no Ray cluster needed)."""

import json

import pytest

from cropray.errors import CroprayError
from cropray.tune import SPACES, TuneConfig, default_point
from cropray.tune.records import load_state, make_record, record_path, write_json
from cropray.tune.search import RandomSearch, make_searcher


def test_random_search_skip_continues_the_sequence():
    first = RandomSearch("mid", seed=4)
    draws = [first.suggest(str(i)) for i in range(5)]
    resumed = RandomSearch("mid", seed=4, points_to_evaluate=[draws[1]], skip=3)
    assert resumed.suggest("a") == draws[1]  # a rerun first, with its recorded config
    assert [resumed.suggest(str(i)) for i in range(2)] == draws[3:5]


def test_optuna_is_told_the_finished_trials():
    pytest.importorskip("optuna")
    tcfg = TuneConfig(search="optuna", seed=0)
    p0 = default_point(SPACES["few"])
    p1 = RandomSearch("few", seed=1).suggest("x")
    limiter, kind = make_searcher("few", tcfg, 1, reruns=[p1], done=[(p0, 0.8), (p1, None)], draws=1)
    study = limiter.searcher._ot_study
    states = {t.state.name: t for t in study.trials}
    assert kind == "optuna" and sorted(states) == ["COMPLETE", "FAIL", "WAITING"]  # WAITING: the rerun queued
    assert states["COMPLETE"].params == p0 and states["COMPLETE"].value == 0.8
    assert limiter.suggest("t1") == p1  # the rerun comes first


def _state(out, regime="few"):
    write_json(out / "tune_config.json", TuneConfig().to_dict())
    write_json(out / "data.json", {"labels": "L", "n_labels": 40, "fingerprint": "0" * 64, "regime": regime})
    (out / "trials").mkdir()


def test_records_round_trip_and_misnumbered_records_are_refused(tmp_path):
    _state(tmp_path)
    p0 = default_point(SPACES["few"])
    rec = make_record(0, "abc", p0, "completed", {"epoch": 2, "cv_auc": 0.9, "finished": True, "junk": "x"},
                      None, "sweep")
    write_json(record_path(tmp_path, 0), rec)
    _, data, records = load_state(tmp_path)
    assert data["regime"] == "few" and records == [rec] and "junk" not in rec["result"]
    (tmp_path / "trials" / "trial-0007.json").write_text(json.dumps(rec))  # says trial 0
    with pytest.raises(CroprayError, match="trial-0007.json: its trial number 0 does not match"):
        load_state(tmp_path)


def test_a_record_with_values_outside_the_space_is_refused(tmp_path):
    _state(tmp_path)
    p0 = dict(default_point(SPACES["few"]), **{"siamese.lr": 5.0})  # the space's lr tops at 1e-2
    write_json(record_path(tmp_path, 0), make_record(0, "abc", p0, "running", {}, None, "sweep"))
    with pytest.raises(CroprayError, match="siamese.lr=5.0 is outside its range"):
        load_state(tmp_path)
