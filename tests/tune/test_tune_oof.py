"""The retrain's reuse of a trial's out-of-fold work (cropray.tune.oof), without Ray: what is rebuilt
equals what cross_validate computed, and a record that does not fit these labels/folds is refused."""

import json

import numpy as np
import pytest

from cropray.synth import SynthConfig, generate
from cropray.train import TrainConfig
from cropray.train.cv import cross_validate
from cropray.train.fit import resolve
from cropray.tune.oof import check_oof, cv_from_record, fingerprint, fold_assignment, oof_record


@pytest.fixture(scope="module")
def cv_run():
    b = generate(40, SynthConfig(snr_range=(5.0, 40.0)), seed=3)
    x, y = b.crops[:, None], b.label.astype(np.int64)
    cfg = resolve(TrainConfig(arch="shallow_cnn", epochs=1, epoch_crops=32, batch_size=16,
                              model_kwargs={"channels": [4, 8, 8]}, seed=5), len(y))
    cv = cross_validate(cfg, x, y, k=3, progress=False, n_boot=300)
    return cfg, x, y, cv, json.loads(json.dumps(oof_record(cv, fingerprint(x, y), cfg.seed)))  # via JSON text


def test_rebuilt_cv_equals_the_one_cross_validate_computed(cv_run):
    cfg, x, y, cv, rec = cv_run
    assert check_oof(rec) is None
    np.testing.assert_array_equal(fold_assignment(y, 3, cfg.seed), cv.fold)  # the folds train draws
    got, why = cv_from_record(rec, cfg, x, y, k=3, n_boot=300)
    assert why is None
    assert got.threshold == cv.threshold and got.best_epochs == cv.best_epochs and got.k == 3
    np.testing.assert_array_equal(got.oof_scores, cv.oof_scores)  # exact through JSON
    for name in ("roc_auc", "pr_auc", "recall_at_1pct_fpr", "accuracy"):
        assert got.metrics[name] == cv.metrics[name], name  # same scores, resamples and seed
    assert got.fold_auc == pytest.approx(cv.fold_auc, abs=0)


def test_a_record_that_does_not_fit_is_refused(cv_run):
    cfg, x, y, cv, rec = cv_run
    cases = {
        "other labels": (dict(rec), x[::-1].copy(), "computed on other labels"),
        "folds": (dict(rec, fold=[int(f) for f in np.roll(rec["fold"], 1)]), x, "folds are not the ones"),
        "k": (dict(rec, k=2, best_epochs=rec["best_epochs"][:2]), x, "k=2"),
        "threshold": (dict(rec, threshold=rec["threshold"] + 1e-3), x, "threshold is not"),
        "malformed": (dict(rec, scores=rec["scores"][:-1]), x, "malformed"),
    }
    for name, (bad, xs, msg) in cases.items():
        got, why = cv_from_record(bad, cfg, xs, y, k=3)
        assert got is None and msg in why, (name, why)
    got, why = cv_from_record(rec, cfg.replace(seed=cfg.seed + 1), x, y, k=3)
    assert got is None and "seed" in why
