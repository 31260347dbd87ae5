"""A trial's out-of-fold work, kept so the sweep's retrain does not cross-validate the winner again.

A completed trial has already run the k-fold CV that `cropray train` would run for its configuration:
same labels, same seed, same StratifiedKFold, so the same folds. Its last report carries that work as
plain JSON (`oof_record`), which the driver writes into the trial's record (OUT/trials/trial-NNNN.json):

    {"fingerprint": sha256 of the labels it trained on, "k", "seed",
     "scores": [N floats, each crop scored by the fold model that did not see it],
     "fold": [N ints, each crop's held-out fold], "best_epochs": [k ints], "threshold": float,
     "variants": {metrics key: {rule: ROC-AUC}} (a model's alternative scoring rules, e.g. Siamese gallery)}

`cv_from_record` turns it back into the `CVResult` the retrain needs (threshold, metrics with
bootstrap intervals recomputed from the scores at the bundle's resample count, best epochs) after
checking that it belongs to these labels (fingerprint), that its folds are the ones `cropray train`
would draw, and that its threshold is what calibration gives on its scores. Any mismatch: a reason, and
the retrain cross-validates as before. Torch- and Ray-free.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

OOF_KEYS = ("fingerprint", "k", "seed", "scores", "fold", "best_epochs", "threshold", "variants")


def fingerprint(x: np.ndarray, y: np.ndarray) -> str:
    """sha256 of the labelled set, so --resume refuses different labels (trials would not compare) and a
    trial's out-of-fold scores are only reused on the labels they were computed on."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(x, dtype=np.float32).tobytes())
    return h.hexdigest()


def fold_assignment(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """(N,) held-out fold of each crop, as cropray.train.cv.cross_validate draws them."""
    from sklearn.model_selection import StratifiedKFold

    fold = np.full(len(y), -1, np.int64)
    for i, (_, te) in enumerate(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
                                .split(np.zeros(len(y)), y)):
        fold[te] = i
    return fold


def oof_record(res, fp: str, seed: int) -> dict:
    """The JSON-able out-of-fold work of a CVResult `res` (floats are exact: JSON keeps a double's repr)."""
    variants = {key: {r: float(a) for r, a in v.items()} for key, v in res.metrics.items()
                if isinstance(v, dict) and v and "value" not in v}  # {rule: auc}, not a {value, lo, hi}
    return {"fingerprint": fp, "k": int(res.k), "seed": int(seed),
            "scores": [float(s) for s in res.oof_scores], "fold": [int(f) for f in res.fold],
            "best_epochs": [int(e) for e in res.best_epochs], "threshold": float(res.threshold),
            "variants": variants}


def check_oof(d) -> str | None:
    """None when `d` has an out-of-fold record's structure and types, else what is wrong."""
    if not isinstance(d, dict) or set(d) != set(OOF_KEYS):
        return "unexpected structure"
    lists = (d["scores"], d["fold"], d["best_epochs"])
    if not all(isinstance(v, list) for v in lists) or len(d["scores"]) != len(d["fold"]):
        return "scores and fold must be lists of one length"
    num = (int, float)
    if not all(isinstance(s, num) and not isinstance(s, bool) and math.isfinite(s) for s in d["scores"]):
        return "scores must be finite numbers"
    ints = [d["k"], d["seed"], *d["fold"], *d["best_epochs"]]
    if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in ints):
        return "k, seed, fold and best_epochs must be non-negative integers"
    if len(d["best_epochs"]) != d["k"] or not isinstance(d["threshold"], num) or not isinstance(d["fingerprint"], str):
        return "best_epochs must have k entries, threshold be a number, fingerprint text"
    if not isinstance(d["variants"], dict) or not all(
            isinstance(v, dict) and all(isinstance(a, num) for a in v.values()) for v in d["variants"].values()):
        return "variants must map names to {rule: number}"
    return None


def cv_from_record(d: dict, cfg, x: np.ndarray, y: np.ndarray, *, k: int | None, snr=None,
                   n_boot: int = 1000):
    """(CVResult rebuilt from the out-of-fold record `d` of a trial of resolved config `cfg`, None) when it
    is the CV `cropray train` would run on (x, y) with `k` folds; (None, why not) otherwise."""
    from sklearn.metrics import roc_auc_score

    from cropray.evaluate.metrics import binary_metrics, calibrate_threshold, snr_recall
    from cropray.train.cv import CVResult, choose_k

    why = check_oof(d)
    if why:
        return None, f"its out-of-fold record is malformed ({why})"
    y = np.asarray(y).astype(np.int64)
    want_k = choose_k(y) if k is None else int(k)
    if d["fingerprint"] != fingerprint(x, y) or len(d["scores"]) != len(y):
        return None, "its out-of-fold scores were computed on other labels"
    if d["k"] != want_k or d["seed"] != cfg.seed:
        return None, f"it used k={d['k']}, seed {d['seed']}; the retrain uses k={want_k}, seed {cfg.seed}"
    fold = np.asarray(d["fold"], np.int64)
    if not np.array_equal(fold, fold_assignment(y, want_k, cfg.seed)):
        return None, "its folds are not the ones cropray train draws"
    oof = np.asarray(d["scores"], np.float64)
    threshold = float(d["threshold"])
    if calibrate_threshold(y, oof) != threshold:
        return None, "its threshold is not the calibration of its out-of-fold scores"
    metrics = binary_metrics(y, oof, threshold, n_boot=n_boot, seed=cfg.seed)
    fold_auc = [float(roc_auc_score(y[fold == i], oof[fold == i])) for i in range(want_k)]
    metrics.update(fold_auc_mean=float(np.mean(fold_auc)), fold_auc_std=float(np.std(fold_auc)), k=want_k)
    if snr is not None:
        metrics["snr_recall"] = snr_recall(y, oof, snr, threshold)
    metrics.update(d["variants"])
    return CVResult(cfg=cfg, k=want_k, oof_scores=oof, fold=fold, threshold=threshold, metrics=metrics,
                    fold_auc=fold_auc, best_epochs=list(d["best_epochs"])), None
