"""The training budget (epoch cap by label count, warm-up, CV plateau stop) and non-TTY progress lines."""

import numpy as np
import pytest

from cropray.models import arch_spec
from cropray.train import TrainConfig, cross_validate, fit
from cropray.train.budget import CVPlateau, epoch_cap, warmup_epochs

TINY = {"channels": [8, 16, 32]}


def test_epoch_cap_shrinks_past_400_labels_and_explicit_values_win():
    deep = arch_spec("deep_cnn").train_defaults["epochs"]
    assert epoch_cap(deep, 25) == epoch_cap(deep, 400) == deep  # an epoch is the 256-draw minimum here
    assert epoch_cap(deep, 1600) == round(deep / 2) and epoch_cap(deep, 10**6) == 10  # sqrt(400 / n), floor 10
    assert TrainConfig().resolve("deep_cnn", 1600).epochs == round(deep / 2)
    assert TrainConfig(epochs=7).resolve("deep_cnn", 5000).epochs == 7  # the user's epochs are kept
    assert TrainConfig().resolve("deep_cnn").epochs == deep  # no label count: the architecture's cap
    assert TrainConfig().resolve("dedoppler", 5000).epochs == 0


def test_warmup_and_cv_patience_defaults():
    assert [warmup_epochs(e) for e in (2, 3, 10, 40, 60)] == [1, 1, 5, 10, 15]
    cfg = TrainConfig().resolve("shallow_cnn", 50)
    assert cfg.min_epochs == warmup_epochs(cfg.epochs) and cfg.cv_patience == cfg.patience
    assert TrainConfig(min_epochs=0, cv_patience=0).resolve("siamese", 50).cv_patience == 0  # 0 = never


def test_cv_plateau_rule():
    p = CVPlateau(patience=2, warmup=3)
    # warm-up epochs never stop; +0.001 is not progress (< CV_DELTA); 2 epochs without progress stop
    assert [p.update(e, a) for e, a in enumerate([0.8, 0.7, 0.7, 0.9, 0.901, 0.9], 1)] == \
        [False, False, False, False, False, True]
    assert p.best_epoch == 4
    never = CVPlateau(patience=0, warmup=0)
    assert not any(never.update(e, 0.5) for e in range(1, 50))


def test_cv_stops_on_plateau_and_is_deterministic(easy_train):
    x, y = easy_train[0][:60], easy_train[1][:60]
    cfg = TrainConfig(arch="shallow_cnn", epochs=12, patience=100, min_epochs=1, cv_patience=1,
                      model_kwargs=TINY, epoch_crops=1)
    a = cross_validate(cfg, x, y, k=3, n_boot=0, progress=False)
    assert a.stopped_by_plateau and not a.stopped_by_callback and len(a.history) < 12
    assert all(be <= len(a.history) for be in a.best_epochs)
    b = cross_validate(cfg, x, y, k=3, n_boot=0, progress=False)  # same seed, same labels -> same model
    np.testing.assert_array_equal(a.oof_scores, b.oof_scores)
    assert len(b.history) == len(a.history)


@pytest.mark.parametrize("progress", [None, False])
def test_progress_lines_off_a_terminal(easy_train, capsys, monkeypatch, progress):
    monkeypatch.setenv("CROPRAY_PROGRESS_INTERVAL", "0")  # a line at every fold-epoch
    x, y = easy_train[0][:60], easy_train[1][:60]
    cfg = TrainConfig(arch="siamese", epochs=2, model_kwargs=TINY, epoch_crops=1)
    cross_validate(cfg, x, y, k=3, n_boot=0, progress=progress)
    fit(cfg, x, y, epochs=1, progress=progress, stage="refit siamese")
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("cropray train: ")]
    if progress is False:
        assert lines == []
        return
    cv = [ln for ln in lines if ln.startswith("cropray train: cv siamese k=3 | ")]
    assert len(cv) == 6  # 2 epochs x 3 folds, each a plain line (stderr is not a terminal)
    assert "epoch 1/2 | folds active 3/3 | " in cv[0] and "ETA <= " in cv[0]
    assert "best CV ROC-AUC 0." in cv[-1] and cv[-1].count("epoch 2/2") == 1
    assert any(ln.startswith("cropray train: refit siamese | epoch 1/1 | ") for ln in lines)
    assert "\r" not in err  # no bar redraws in a log
