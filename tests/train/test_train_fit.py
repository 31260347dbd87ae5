"""fit: learns an easy set, is deterministic for a seed, refuses unusable label sets."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from cropray.errors import CroprayError
from cropray.train import TrainConfig, check_labels, fit
from cropray.train.fit import stratified_split
from cropray.train.loop import Trainer

# Tiny model widths keep each epoch ~1 s on 2 CPU cores; the architecture is the real one.
TINY = {"shallow_cnn": {"channels": [8, 16, 32]}, "siamese": {"channels": [8, 16, 32]}}


def test_short_training_learns_easy_set(easy_train, easy_test):
    x, y = easy_train
    cfg = TrainConfig(arch="shallow_cnn", epochs=6, model_kwargs=TINY["shallow_cnn"], seed=0)
    res = fit(cfg, x, y, progress=False)
    xt, yt = easy_test
    with torch.no_grad():
        s = res.model(torch.from_numpy(xt)).numpy()  # the bundle-ready model takes raw crops
    assert roc_auc_score(yt, s) > 0.9
    assert res.cfg.arch == "shallow_cnn" and 1 <= res.best_epoch <= 6 and len(res.history) <= 6
    assert not res.model.training


def test_same_seed_same_model(easy_train):
    x, y = easy_train[0][:80], easy_train[1][:80]
    cfg = TrainConfig(arch="siamese", epochs=2, model_kwargs=TINY["siamese"], seed=5, epoch_crops=1)
    a = fit(cfg, x, y, progress=False).model
    b = fit(cfg, x, y, progress=False).model
    for (ka, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(va, vb), ka  # weights, BN statistics and the gallery
    assert a.state_summary()["gallery_size"] == 80  # gallery: every labelled crop, both classes


def test_trainers_in_lockstep_equal_trainers_alone(easy_train):
    # Each trainer owns its RNG state: interleaving epochs with another trainer changes nothing.
    x, y = easy_train[0][:64], easy_train[1][:64]
    cfg = TrainConfig(arch="shallow_cnn", epochs=2, model_kwargs=TINY["shallow_cnn"], loss="focal", epoch_crops=1,
                      balance="sampler").resolve("shallow_cnn")
    alone = Trainer(cfg, x, y, seed=1)
    alone.run_epoch()
    alone.run_epoch()
    a, b = Trainer(cfg, x, y, seed=1), Trainer(cfg, x[::-1].copy(), y[::-1].copy(), seed=2)
    for _ in range(2):
        a.run_epoch()
        b.run_epoch()
    for (k, va), vb in zip(alone.model.state_dict().items(), a.model.state_dict().values()):
        assert torch.equal(va, vb), k


def test_check_labels_messages():
    with pytest.raises(CroprayError, match="found 10 signal .* and 10 non-signal .*label 5 more"):
        check_labels(np.r_[np.ones(10), np.zeros(10)])
    with pytest.raises(CroprayError, match="found 0 signal .* and 30 non-signal.*both classes"):
        check_labels(np.zeros(30))
    assert check_labels(np.r_[np.ones(5), np.zeros(20)]) == {0: 20, 1: 5}


def test_stratified_split_keeps_both_classes_in_training():
    y = np.r_[np.ones(3), np.zeros(20)]
    tr, va = stratified_split(y, 0.2, seed=0)
    assert sorted(np.r_[tr, va].tolist()) == list(range(23))
    assert y[va].sum() == 1 and (y[va] == 0).sum() == 4 and y[tr].sum() == 2
    tr, va = stratified_split(np.r_[np.ones(1), np.zeros(20)], 0.2, seed=0)  # a lone positive trains
    assert 0 in tr and len(va) == 4
