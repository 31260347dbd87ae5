"""The CV plateau stop reads the folds' inner validation splits only, never a held-out fold."""

import numpy as np
from sklearn.model_selection import StratifiedKFold

from cropray.train import TrainConfig
from cropray.train.budget import CVPlateau
from cropray.train.cv import cross_validate, lockstep
from cropray.train.fit import resolve, stratified_split
from cropray.train.loop import Trainer


def easy_set(n: int, seed: int):
    from cropray.synth import SynthConfig, generate

    b = generate(n, SynthConfig(snr_range=(30.0, 100.0)), seed=seed)
    return b.crops[:, None].astype(np.float32), b.label.astype(np.int64)

CFG = TrainConfig(arch="shallow_cnn", epochs=10, patience=2, cv_patience=2, min_epochs=2, epoch_crops=32,
                  batch_size=16, model_kwargs={"channels": [4, 8, 8]})


def _folds(x, y, k=2):
    """Fresh trainers (same seeds each call: same training), held-out indices and inner validation sets."""
    cfg = resolve(CFG, len(y))
    trainers, held, vals = [], [], []
    for i, (tr, te) in enumerate(StratifiedKFold(k, shuffle=True, random_state=cfg.seed).split(x, y)):
        a, b = stratified_split(y[tr], cfg.val_fraction, cfg.seed + 1000 * (i + 1))
        trainers.append(Trainer(cfg, x[tr[a]], y[tr[a]], x[tr[b]], y[tr[b]], seed=cfg.seed + 1000 * (i + 1)))
        held.append(te)
        vals.append((x[tr[b]], y[tr[b]]))
    return cfg, trainers, held, vals


def _run(x, y, held_out_quality):
    """lockstep with adversarial held-out scores: held_out_quality(epoch) -> the share of a fold's held-out
    positives scored above every negative (the held-out ROC-AUC rises with it)."""
    cfg, trainers, held, vals = _folds(x, y)
    oof = np.zeros(len(y))

    def score_fold(i):
        te = held[i]
        pos = np.flatnonzero(y[te] == 1)
        q = held_out_quality(trainers[i].epoch)
        s = np.zeros(len(te))
        s[pos[: int(round(q * len(pos)))]] = 1.0  # these positives rank above every negative
        oof[te] = s

    return lockstep(cfg, trainers, vals, y, oof, held, score_fold, progress=False), cfg


def test_held_out_scores_never_move_the_stop():
    x, y = easy_set(48, seed=21)
    (h_up, _, pl_up), cfg = _run(x, y, lambda e: min(1.0, 0.1 * e))  # held-out ROC-AUC keeps rising
    (h_flat, _, pl_flat), _ = _run(x, y, lambda e: 0.0)  # held-out ROC-AUC flat at 0.5
    assert [m["cv_auc"] for m in h_up] != [m["cv_auc"] for m in h_flat]  # the held-out signals disagree
    # ... yet the stop is the same: it follows the pooled inner-validation ROC-AUC, identical in both
    assert len(h_up) == len(h_flat) and pl_up == pl_flat
    assert [m["inner_val_auc"] for m in h_up] == [m["inner_val_auc"] for m in h_flat]
    assert all(m["inner_val_auc"] is not None for m in h_up)
    # a stop on the held-out ROC-AUC would have ended the flat run at warm-up + patience
    old = CVPlateau(cfg.cv_patience, cfg.min_epochs)
    old_stop = next((m["epoch"] for m in h_flat if old.update(m["epoch"], m["cv_auc"])), None)
    assert old_stop == cfg.min_epochs + cfg.cv_patience


def test_cross_validate_records_the_inner_validation_signal():
    x, y = easy_set(40, seed=22)
    cv = cross_validate(CFG, x, y, k=2, progress=False, n_boot=50)
    assert all(0.0 <= m["inner_val_auc"] <= 1.0 for m in cv.history)
    plateau = CVPlateau(cv.cfg.cv_patience, cv.cfg.min_epochs)
    stops = [m["epoch"] for m in cv.history if plateau.update(m["epoch"], m["inner_val_auc"])]
    # stopped by the plateau exactly when the inner-validation series says so
    assert cv.stopped_by_plateau == (bool(stops) and stops[0] == len(cv.history) and len(cv.history) < CFG.epochs)
