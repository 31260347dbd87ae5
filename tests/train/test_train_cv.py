"""cross_validate: folds in lockstep, per-epoch CV metric callback, out-of-fold scores, k rule."""

import numpy as np
import pytest

from cropray.errors import CroprayError
from cropray.train import TrainConfig, choose_k, cross_validate

# Tiny model widths keep each epoch ~1 s on 2 CPU cores; the architecture is the real one.
TINY = {"shallow_cnn": {"channels": [8, 16, 32]}, "siamese": {"channels": [8, 16, 32]}}


def test_k_rule():
    assert choose_k(np.r_[np.ones(50), np.zeros(300)]) == 5
    assert choose_k(np.r_[np.ones(3), np.zeros(30)]) == 3
    with pytest.raises(CroprayError, match="minority class has 1"):
        choose_k(np.r_[np.ones(1), np.zeros(30)])


def test_lockstep_cv_reports_each_epoch(easy_train):
    x, y = easy_train[0][:60], easy_train[1][:60]
    seen = []
    cfg = TrainConfig(arch="siamese", epochs=2, patience=5, model_kwargs=TINY["siamese"], epoch_crops=1)
    res = cross_validate(cfg, x, y, on_epoch=lambda e, m: seen.append((e, m)), n_boot=50)
    assert [e for e, _ in seen] == [1, 2] and res.k == 5
    assert all(0 <= m["cv_auc"] <= 1 and m["folds_active"] == 5 for _, m in seen)
    assert res.oof_scores.shape == (60,) and sorted(set(res.fold.tolist())) == [0, 1, 2, 3, 4]
    assert res.metrics["roc_auc"]["value"] > 0.5 and res.metrics["k"] == 5
    assert set(res.metrics["gallery_rule_auc"]) == {"knn", "seed", "proto"}
    assert res.history[-1]["cv_auc"] == pytest.approx(res.metrics["fold_auc_mean"])


def test_callback_can_stop_and_baseline_needs_no_training(easy_train):
    x, y = easy_train[0][:60], easy_train[1][:60]
    cfg = TrainConfig(arch="shallow_cnn", epochs=5, model_kwargs=TINY["shallow_cnn"], epoch_crops=1)
    res = cross_validate(cfg, x, y, k=3, on_epoch=lambda e, m: True, n_boot=0)
    assert res.stopped_by_callback and len(res.history) == 1 and res.k == 3
    base = cross_validate(TrainConfig(arch="dedoppler"), x, y, snr=np.full(60, np.nan), n_boot=0)
    assert base.history == [] and base.metrics["roc_auc"]["value"] > 0.7 and base.metrics["snr_recall"] == []


@pytest.mark.parametrize("arch", ["shallow_cnn", "siamese"])
def test_fold_models_reproduce_out_of_fold_scores(easy_train, arch):
    # Path-aware CV rescoring each held-out fold through another execution path needs the exact
    # weights (and Siamese gallery) that produced the out-of-fold scores.
    import torch

    x, y = easy_train[0][:60], easy_train[1][:60]
    cfg = TrainConfig(arch=arch, epochs=3, patience=5, model_kwargs=TINY[arch], epoch_crops=1, min_epochs=0)
    res = cross_validate(cfg, x, y, k=3, n_boot=0)
    assert len(res.fold_models) == 3
    for i, m in enumerate(res.fold_models):
        te = res.fold == i
        with torch.no_grad():
            s = m.eval()(torch.as_tensor(x[te])).float().numpy()
        np.testing.assert_allclose(s, res.oof_scores[te], rtol=1e-4, atol=1e-5)
