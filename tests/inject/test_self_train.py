"""Self-training: pseudo-labels only where every weak view is confident and agrees; logit models only."""

from __future__ import annotations

import numpy as np
import pytest

from cropray.errors import ConfigError
from cropray.synth import SynthConfig, generate
from cropray.train import TrainConfig
from cropray.train.self_train import SelfTrainConfig, pseudo_label, self_train, weak_probabilities


def test_pseudo_labels_need_every_view_confident():
    p = np.array([[0.99, 0.99, 0.01, 0.50, 0.97, 0.02],
                  [0.98, 0.90, 0.02, 0.99, 0.99, 0.03]])  # (views, pool)
    idx, lab = pseudo_label(p, tau=0.95, max_pseudo=10)
    assert dict(zip(idx.tolist(), lab.tolist())) == {0: 1, 4: 1, 2: 0, 5: 0}  # 1 and 3: a view disagrees
    idx, lab = pseudo_label(p, tau=0.95, max_pseudo=1)
    assert dict(zip(idx.tolist(), lab.tolist())) == {0: 1, 2: 0}  # the most confident of each class
    with pytest.raises(ConfigError, match="tau"):
        SelfTrainConfig(tau=0.4)


def test_self_training_round_trains_a_student_on_confident_archive_crops():
    lab = generate(40, SynthConfig(snr_range=(30.0, 100.0)), seed=1)
    pool = generate(120, SynthConfig(snr_range=(30.0, 100.0)), seed=2)
    cfg = TrainConfig(arch="shallow_cnn", epochs=2, epoch_crops=32, batch_size=16)
    res, info = self_train(cfg, lab.crops[:, None], lab.label, pool.crops[:, None],
                           SelfTrainConfig(tau=0.6, views=2, max_pseudo=30), per_epoch=32, progress=False)
    r = info["rounds"][0]
    assert r["pool"] == 120 and 0 < r["pseudo_signal"] + r["pseudo_not"] <= 60
    p = weak_probabilities(res.model, pool.crops[:8, None], cfg.resolve("shallow_cnn"), 2, 0)
    assert p.shape == (2, 8) and ((p >= 0) & (p <= 1)).all()
    import torch

    with torch.inference_mode():  # view 0 is the crop itself, and the score is already the probability
        np.testing.assert_allclose(p[0], res.model(torch.from_numpy(pool.crops[:8, None])).numpy(), rtol=1e-5)
    with pytest.raises(ConfigError, match="logit model"):
        self_train(TrainConfig(arch="siamese", epochs=1), lab.crops[:, None], lab.label, pool.crops[:, None],
                   SelfTrainConfig())


FAST = {"epoch_crops": 32, "batch_size": 16}


def test_self_training_cv_gives_each_fold_its_own_teacher():
    """The CV of self-training: the base CV's folds, real crops only, and fold i's pseudo-labels come
    from fold i's own model (trained without fold i's labels), never from one teacher that saw them all."""
    from cropray.train.cv import cross_validate
    from cropray.train.self_train_cv import self_train_cv

    lab = generate(40, SynthConfig(snr_range=(30.0, 100.0)), seed=1)
    pool = generate(100, SynthConfig(snr_range=(30.0, 100.0)), seed=2).crops[:, None]
    x, y = lab.crops[:, None], lab.label.astype(np.int64)
    cfg = TrainConfig(arch="shallow_cnn", epochs=1, **FAST).resolve("shallow_cnn")
    base = cross_validate(cfg, x, y, k=2, progress=False, n_boot=20)
    st = SelfTrainConfig(tau=0.6, views=2, max_pseudo=30)
    cv, rounds = self_train_cv(cfg, x, y, pool, st, base, per_epoch=32, n_boot=20, progress=False)
    np.testing.assert_array_equal(cv.fold, base.fold)  # the same folds, over the real labelled crops only
    assert cv.oof_scores.shape == (len(y),) and cv.metrics["k"] == 2 and len(cv.fold_auc) == 2
    assert len(rounds) == 2
    for i in range(2):  # each fold's round-1 counts are what fold i's own model pseudo-labels
        _, expect = pseudo_label(weak_probabilities(base.fold_models[i], pool, cfg, st.views, st.seed), st.tau,
                                 st.max_pseudo)
        r = rounds[i][0]
        assert (r["pseudo_signal"], r["pseudo_not"]) == (int((expect == 1).sum()), int((expect == 0).sum()))
        if r["pseudo_signal"] + r["pseudo_not"]:  # a student was trained: its held-out scores replace the base's
            assert not np.array_equal(cv.oof_scores[cv.fold == i], base.oof_scores[base.fold == i])


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    from cropray.synth import synth_archive

    root = tmp_path_factory.mktemp("st")
    synth_archive(root / "labels", 30, labeled=True, seed=1, snr_range=(20.0, 100.0))
    synth_archive(root / "archive", 400, files=2, seed=3, snr_range=(20.0, 100.0))
    return root


def test_cli_self_train_records_pseudo_labels_per_round_and_class(sets, tmp_path, capsys):
    import json

    from cropray.cli import main

    common = ["train", str(sets / "labels"), "--arch", "shallow_cnn", "--epochs", "1", "--folds", "2",
              "--config", json.dumps(FAST), "--archive", str(sets / "archive"), "--archive-crops", "100",
              "--inject-config", '{"per_epoch": 32, "min_backgrounds": 10}',
              "--self-train", "--self-train-tau", "0.6", "--self-train-pool", "120"]
    assert main([*common, "--out", str(tmp_path / "m"), "--self-train-rounds", "2", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    st = s["archive"]["self_training"]
    assert st["tau"] == 0.6 and st["rounds"] == 2 and st["pool"] == 120 and st["pool_dropped_labelled"] == 0
    assert len(st["cv_folds"]) == 2 and all(1 <= len(f) <= 2 for f in st["cv_folds"])
    for f in st["cv_folds"]:
        for r in f:
            assert r["pool"] == 120 and 0 <= r["pseudo_signal"] <= st["max_pseudo"] and 0 <= r["pseudo_not"]
    assert isinstance(st["used"], bool) and "same 2 folds" in st["reason"]
    shipped = st["cv_roc_auc"] if st["used"] else st["base_cv_roc_auc"]  # the CV of the model in the bundle
    assert s["cv_metrics"]["roc_auc"]["value"] == pytest.approx(shipped, abs=1e-4)
    assert st["used"] == ("final" in st and st["cv_roc_auc"] > st["base_cv_roc_auc"] + 1e-3)
    man = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert man["train_summary"]["archive"]["self_training"] == st  # the manifest records the same
    assert man["train_summary"]["n_labels"] == 30  # folds, threshold and metrics: the 30 real crops
    from cropray.cli.train import _human

    text = _human(s)  # the human summary says the same
    assert "self-train tau 0.6, 2 round(s), pool 120 archive crops" in text and "fold 1: r1 " in text
    assert st["reason"] in text


def test_cli_self_train_errors_name_the_flag(sets, tmp_path, capsys):
    from cropray.cli import main

    base = ["train", str(sets / "labels"), "--out", str(tmp_path / "m"), "--epochs", "1"]
    arc = ["--archive", str(sets / "archive")]
    cases = [([*base, "--self-train"], "--self-train needs --archive"),
             ([*base, *arc, "--self-train-tau", "0.9"], "--self-train-tau need --self-train"),
             ([*base, *arc, "--self-train", "--self-train-tau", "0.4"], "--self-train-tau 0.4 is out of range"),
             ([*base, *arc, "--self-train", "--self-train-rounds", "9"], "--self-train-rounds 9 is out of range"),
             ([*base, *arc, "--self-train", "--arch", "siamese"], "--arch siamese: self-training needs a logit")]
    for argv, msg in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "m").exists()  # refused before any training


def test_auto_choosing_a_metric_model_skips_self_training_and_says_why():
    from cropray.train.self_train_cv import self_train_step, skip_reason

    assert skip_reason("shallow_cnn") is None and skip_reason("deep_cnn") is None
    for arch in ("siamese", "dedoppler"):
        cfg = TrainConfig(arch=arch).resolve(arch)
        said = []
        cv, res, info = self_train_step(cfg, None, "base cv", "refit", None, SelfTrainConfig(), archive="unused",
                                        inject=None, say=said.append)
        assert (cv, res) == ("base cv", "refit") and info["used"] is False  # the base model ships, untouched
        assert f"{arch} is not one; self-training skipped" in info["skipped"] and said[0].startswith("warning: ")
    from cropray.cli.train import _self_train_lines

    assert _self_train_lines(info) == [f"self-train {info['skipped']}"]


def test_pseudo_labels_join_a_paired_archive_as_unlabelled_not_negative():
    from cropray.train.archive_data import UNLABELLED, ExtraCrops
    from cropray.train.self_train import PER_EPOCH, with_pseudo

    x = np.zeros((6, 1, 4, 4), np.float32)
    paired = ExtraCrops(x, np.r_[np.full(3, UNLABELLED), np.ones(3)], plain="paired", pu_prior=0.3)
    ex = with_pseudo(paired, np.ones((2, 1, 4, 4), np.float32), np.array([0, 1]), 0.5, 64)
    assert ex.plain == "pu" and ex.pu_prior == 0.3 and len(ex) == 8
    assert list(ex.y) == [UNLABELLED] * 3 + [1] * 3 + [0, 1]  # plain copies stay unlabelled
    assert with_pseudo(None, x[:2], np.array([0, 1]), 0.5, PER_EPOCH).per_epoch == 768  # InjectConfig's default
