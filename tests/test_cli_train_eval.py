"""`cropray train` + `cropray eval` end to end on a tiny archive, and their bad-input exits."""

import json

import numpy as np
import pytest

from cropray.archive import write_archive
from cropray.cli import main
from cropray.synth import SynthConfig, generate

TINY = '{"model_kwargs": {"channels": [8, 16, 32]}, "patience": 3, "epoch_crops": 1}'


def _labelled(path, n=60, seed=0, nan_rows=0, labels=None, with_label=True):
    b = generate(n, SynthConfig(snr_range=(30.0, 100.0)), seed=seed)
    crops = b.crops.copy()
    crops[:nan_rows, 0, 0] = np.nan  # invalid rows: skipped and counted, never silently
    cols = {"crop_id": np.arange(n).astype(np.int64), "snr": b.snr}
    if with_label:
        cols["label"] = b.label.astype(np.int64) if labels is None else labels
    write_archive(path, cols, crops)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    lab = _labelled(d / "labels", n=62, nan_rows=2)
    return d, lab


def test_train_then_eval_with_report(trained, capsys):
    d, lab = trained
    rc = main(["train", str(lab), "--out", str(d / "model"), "--epochs", "2", "--seed", "3",
               "--config", TINY, "--json"])
    s = json.loads(capsys.readouterr().out)
    assert rc == 1  # 2 invalid rows were skipped: the job ran but needs attention
    assert s["invalid_rows"] == 2 and s["invalid_reasons"] == {"non_finite": 2} and s["n_labels"] == 60
    assert s["k"] == 5 and s["config"]["seed"] == 3
    # auto compares by default: at 60 labels the few-label regime's two architectures and dedoppler, on
    # the same folds; the bundle is the best by CV ROC-AUC and the manifest records the comparison
    comp = s["auto_comparison"]
    assert [c["arch"] for c in comp["candidates"]] == ["dedoppler", "siamese", "shallow_cnn"]
    best = max(c["cv_auc"] for c in comp["candidates"])
    assert [c["arch"] for c in comp["candidates"] if c["chosen"]] == [s["arch"]]
    assert next(c for c in comp["candidates"] if c["chosen"])["cv_auc"] >= best - 1e-3
    assert 0 <= s["cv_metrics"]["roc_auc"]["lo"] <= s["cv_metrics"]["roc_auc"]["hi"] <= 1
    manifest = json.loads((d / "model" / "manifest.json").read_text())
    assert manifest["threshold"] == s["threshold"] and manifest["train_summary"]["invalid_rows"] == 2
    assert manifest["train_summary"]["auto_comparison"] == comp

    test = _labelled(d / "test", n=200, seed=9)
    rc = main(["eval", str(d / "model"), str(test), "--report", str(d / "rep")])
    out = capsys.readouterr().out
    assert rc == 0 and "ROC-AUC" in out and "SNR bin" in out and "report" in out
    names = sorted(p.name for p in (d / "rep").iterdir())
    assert names == ["calibration.png", "metrics.json", "pr.png", "roc.png", "score_hist.png", "snr_recall.png"]
    doc = json.loads((d / "rep" / "metrics.json").read_text())
    assert doc["model_id"] == s["model_id"] and doc["metrics"]["n"] == 200
    assert doc["metrics"]["roc_auc"]["value"] > 0.6

    rc = main(["eval", str(d / "model"), str(lab), "--json"])  # own labels, with the 2 invalid rows
    e = json.loads(capsys.readouterr().out)
    assert rc == 1 and e["invalid_rows"] == 2 and e["training_labels"] is True
    from dataclasses import fields

    from cropray.evaluate.job import EvalResult

    assert set(e) == {f.name for f in fields(EvalResult)}  # --json is the typed result's asdict
    from cropray.train.result import TrainResult

    assert set(s) == {f.name for f in fields(TrainResult)}


def _err(capsys) -> str:
    return capsys.readouterr().err


def test_bad_inputs_exit_2(trained, tmp_path, capsys):
    d, lab = trained
    out = str(tmp_path / "m")
    # labels file without a `label` column
    nolab = _labelled(tmp_path / "nolab", n=30, with_label=False)
    assert main(["train", str(nolab), "--out", out]) == 2
    assert "no 'label' column" in _err(capsys)
    # labels not in {0, 1}
    bad = _labelled(tmp_path / "bad", n=30, labels=np.r_[np.zeros(29), 2].astype(np.int64))
    assert main(["train", str(bad), "--out", out]) == 2
    err = _err(capsys)
    assert "label 2 is not 0 or 1" in err and "bad" in err
    # unknown --config key / out of range value / missing config file
    assert main(["train", str(lab), "--out", out, "--config", '{"lrate": 1}']) == 2
    assert "lrate" in (e := _err(capsys)) and "valid keys: arch" in e
    assert main(["train", str(lab), "--out", out, "--config", '{"dropout": 2}']) == 2
    assert "'dropout' = 2" in (e := _err(capsys)) and "[0, 0.95]" in e
    assert main(["train", str(lab), "--out", out, "--config", str(tmp_path / "nope.json")]) == 2
    assert "nope.json: no such file" in _err(capsys)
    # too few labels, one class
    few = _labelled(tmp_path / "few", n=12)
    assert main(["train", str(few), "--out", out]) == 2
    assert "training needs >= 25 labels" in _err(capsys)
    one = _labelled(tmp_path / "one", n=30, labels=np.ones(30, np.int64))
    assert main(["train", str(one), "--out", out]) == 2
    assert "found 30 signal (label 1) and 0 non-signal" in _err(capsys)
    # existing output directory without --overwrite (refused before any training)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "x").write_text("keep")
    assert main(["train", str(lab), "--out", out]) == 2
    assert "--overwrite" in _err(capsys)
    # eval: not a bundle
    assert main(["eval", str(tmp_path / "nolab"), str(lab)]) == 2
    assert "no model bundle here" in _err(capsys)


def test_no_compare_trains_the_regime_default_only(trained, tmp_path, capsys):
    d, lab = trained
    rc = main(["train", str(lab), "--out", str(tmp_path / "m"), "--epochs", "1", "--folds", "2", "--no-compare",
               "--config", TINY, "--json"])
    s = json.loads(capsys.readouterr().out)
    assert rc == 1 and s["arch"] == "siamese" and s["auto_comparison"] is None  # 60 labels -> siamese
