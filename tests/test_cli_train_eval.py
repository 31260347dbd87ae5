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
    # auto compares by default: at 60 labels the shallow CNN (siamese is AUTO_EXCLUDED) and dedoppler, on
    # the same folds; a learned one ships only on a proven paired gain; the manifest records the comparison
    comp = s["auto_comparison"]
    assert [c["arch"] for c in comp["candidates"]] == ["dedoppler", "shallow_cnn"]  # siamese: AUTO_EXCLUDED
    assert [c["arch"] for c in comp["candidates"] if c["chosen"]] == [s["arch"]]
    assert comp["candidates"][0]["gain_vs_physics"] is None
    for c in comp["candidates"][1:]:  # each learned candidate's paired gain over physics, with its interval
        g = c["gain_vs_physics"]
        assert g["lo"] <= g["gain"] <= g["hi"] and g["proven"] == (g["lo"] > 0)
    chosen = next(c for c in comp["candidates"] if c["chosen"])
    assert chosen["arch"] == "dedoppler" or chosen["gain_vs_incumbent"]["proven"]
    assert s["threshold_detail"]["rule"] == "youden"
    assert s["gain_vs_physics"] == chosen.get("gain_vs_physics")  # the shipped one's, None for dedoppler
    assert 0 <= s["cv_metrics"]["roc_auc"]["lo"] <= s["cv_metrics"]["roc_auc"]["hi"] <= 1
    manifest = json.loads((d / "model" / "manifest.json").read_text())
    assert manifest["threshold"] == s["threshold"] and manifest["train_summary"]["invalid_rows"] == 2
    assert manifest["train_summary"]["threshold"]["rule"] == "youden"
    assert manifest["train_summary"]["auto_comparison"] == comp

    test = _labelled(d / "test", n=200, seed=9)
    rc = main(["eval", str(d / "model"), str(test), "--report", str(d / "rep")])
    out = capsys.readouterr().out
    assert rc == 0 and "ROC-AUC" in out and "SNR bin" in out and "report" in out
    assert "at the shipped threshold: balanced accuracy" in out and "Youden's J on the training CV" in out
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
    # --target-fpr: a rate in (0, 0.5), and only with --archive (refused before any training)
    assert main(["train", str(lab), "--out", out, "--overwrite", "--target-fpr", "0.01"]) == 2
    assert "--target-fpr needs --archive" in _err(capsys)
    assert main(["train", str(lab), "--out", out, "--overwrite", "--archive", str(lab), "--target-fpr", "0.7"]) == 2
    assert "--target-fpr 0.7: must be a false-alarm rate in (0, 0.5)" in _err(capsys)
    # eval: not a bundle
    assert main(["eval", str(tmp_path / "nolab"), str(lab)]) == 2
    assert "no model bundle here" in _err(capsys)


def test_no_compare_trains_the_regime_default_only(trained, tmp_path, capsys):
    d, lab = trained
    rc = main(["train", str(lab), "--out", str(tmp_path / "m"), "--epochs", "1", "--folds", "2", "--no-compare",
               "--config", TINY, "--json"])
    s = json.loads(capsys.readouterr().out)
    assert rc == 1 and s["arch"] == "siamese" and s["auto_comparison"] is None  # 60 labels -> siamese
    g = s["gain_vs_physics"]  # measured without a comparison too: the same out-of-fold crops vs dedoppler
    assert g["lo"] <= g["gain"] <= g["hi"] and g["n_boot"] == 2000


def test_physics_ships_when_no_learned_model_proves_a_gain(tmp_path, capsys):
    """30 bright labels: dedoppler already ranks them perfectly, so no learned candidate can prove a gain."""
    lab = _labelled(tmp_path / "labels", n=30, seed=4)
    rc = main(["train", str(lab), "--out", str(tmp_path / "m"), "--epochs", "2", "--folds", "3",
               "--config", TINY, "--json"])
    s = json.loads(capsys.readouterr().out)
    assert rc == 0 and s["arch"] == "dedoppler"
    comp = s["auto_comparison"]["candidates"]
    assert [c["arch"] for c in comp] == ["dedoppler", "shallow_cnn"] and comp[0]["chosen"]
    assert comp[0]["cv_auc"] == 1.0 and all(not c["gain_vs_physics"]["proven"] for c in comp[1:])
    assert "dedoppler ships" in s["auto_comparison"]["reason"]


@pytest.mark.parametrize("plain", ["negative", "paired"])
def test_target_fpr_threshold_is_the_quantile_of_held_back_backgrounds(tmp_path, capsys, plain):
    from cropray.archive import read_labeled
    from cropray.evaluate.job import score_array
    from cropray.inject import InjectConfig
    from cropray.models import build_model
    from cropray.synth import synth_archive
    from cropray.train.archive_data import archive_extra, threshold_backgrounds

    lab = _labelled(tmp_path / "labels", n=30, seed=5)
    synth_archive(tmp_path / "archive", 600, files=2, seed=3)
    inj = json.dumps({"min_backgrounds": 10, "per_epoch": 32, "plain": plain})
    rc = main(["train", str(lab), "--out", str(tmp_path / "m"), "--arch", "dedoppler", "--folds", "2",
               "--archive", str(tmp_path / "archive"), "--archive-crops", "600", "--inject-config", inj,
               "--target-fpr", "0.05", "--seed", "2", "--json"])
    s = json.loads(capsys.readouterr().out)
    d = s["threshold_detail"]
    assert rc == 0 and d["rule"] == "target_fpr" and d["target_fpr"] == 0.05 and d["n_backgrounds"] > 20
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["train_summary"]["threshold"] == d and manifest["threshold"] == s["threshold"]
    # the same backgrounds, rebuilt: the threshold is their empirical (1 - F) quantile
    ls = read_labeled(lab)
    crops, info = archive_extra(tmp_path / "archive", ls.x, ls.y, InjectConfig.from_dict(
        {**json.loads(inj), "archive_crops": 600, "seed": 2}))
    rest, bg = threshold_backgrounds(crops, 2)
    assert len(bg) == d["n_backgrounds"]
    held = (len(crops.y) - len(rest.y)) // (2 if plain == "paired" else 1)  # plain ones held back
    # screened-out backgrounds join in their drawn share (the synthetic archive holds signals: some are)
    assert info["excluded_bright"] > 0 and len(bg) - held == round(held * info["excluded_bright"] / info["usable"])
    assert s["threshold"] == pytest.approx(np.quantile(score_array(build_model("dedoppler"), bg), 0.95), rel=1e-6)
    rc = main(["eval", str(tmp_path / "m"), str(lab)])
    assert "target FPR 0.05 on" in capsys.readouterr().out
