"""`cropray train --self-train`: self-training on the archive, judged by the labels on honest folds.

Why per fold. A teacher trained on all labels knows every held-out fold's labels; its pseudo-labels,
fed to a fold's training part, would carry the held-out labels into that fold (a pool crop that looks
like a held-out crop gets that crop's label), and the CV would flatter self-training. So each fold
runs its own rounds: fold i's first teacher is the CV's own fold-i model (`CVResult.fold_models`,
trained on fold i's training part only), it pseudo-labels the pool, fold i's student trains on fold
i's training part + those crops (+ the injected crops, if any) and scores fold i's held-out crops.
No model that saw a held-out crop's label ever labels anything that fold trains on. The folds, each
fold's inner validation split and seed are the base CV's own (same indices), so the two CV results
compare on the same crops; the threshold and every metric come from the real labelled crops only.

The labels judge: self-training is kept only when its cross-validated ROC-AUC beats the base CV's by
more than `TIE` (ties go to the cheaper, no self-training), the rule `--arch auto` uses. The shipped
model is then refit like `cropray train`'s: the refit on all labels (the teacher) pseudo-labels the
pool, a student is trained on all labels + those crops for the students' median best epoch count.

Logit models only (cropray.train.self_train); when `--arch auto` chose another (the Siamese encoder at
25-99 labels, or `dedoppler`), self-training is skipped with a warning and the manifest says why.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.metrics import roc_auc_score

from cropray.errors import ConfigError
from cropray.evaluate.metrics import binary_metrics, calibrate_threshold, snr_recall
from cropray.train.archive_data import ExtraCrops
from cropray.train.config import TrainConfig
from cropray.train.cv import CVResult
from cropray.train.fit import fit, progress_bar, stratified_split
from cropray.train.self_train import (
    PER_EPOCH,
    SelfTrainConfig,
    check_logit,
    pseudo_label,
    round_counts,
    weak_probabilities,
    with_pseudo,
)

TIE = 1e-3  # as cropray.train.auto: CV ROC-AUC differences below this are noise; prefer the cheaper


def draw_pool(archive, st: SelfTrainConfig, labeled_x: np.ndarray, labeled_ids, *, seed: int,
              crop_shape=None) -> tuple[np.ndarray, int]:
    """(pool (P, 1, H, W) raw crops, how many drawn crops were dropped because they are labelled crops).

    A labelled crop found in the archive (same crop_id) is dropped from the pool: the held-out fold's
    crops must not come back as training crops, even pseudo-labelled."""
    from cropray.inject.sample import sample_backgrounds

    bg = sample_backgrounds(archive, st.pool, seed, crop_shape=crop_shape, expect_shape=tuple(labeled_x.shape[-2:]))
    known = {str(c) for c in labeled_ids}
    keep = np.array([str(c) not in known for c in bg.crop_id], bool) if len(bg.crop_id) else np.zeros(0, bool)
    return np.ascontiguousarray(bg.x[keep]), int((~keep).sum())


def _student(cfg: TrainConfig, x, y, fit_idx, val_idx, seed: int, extra: ExtraCrops, progress, desc: str):
    from cropray.train.loop import Trainer

    t = Trainer(cfg, x[fit_idx], y[fit_idx], x[val_idx], y[val_idx], seed=seed, extra=extra)
    with progress_bar(cfg.epochs, desc, progress) as bar:
        while not t.done:
            t.run_epoch()
            bar.update(1)
    t.use_best()
    return t


def self_train_cv(cfg: TrainConfig, x, y, pool: np.ndarray, st: SelfTrainConfig, base: CVResult, *,
                  extra: ExtraCrops | None = None, real_share: float = 0.5, per_epoch: int = PER_EPOCH, snr=None,
                  n_boot: int = 1000, progress=None) -> tuple[CVResult, list[list[dict]]]:
    """CV of self-training on `base`'s folds, each fold with its own teachers (module docstring).

    cfg: the resolved config `base` was made with. Returns (the CVResult, per fold: each round's
    pseudo-label counts). A fold whose teacher is confident about no pool crop keeps its base scores."""
    t0 = time.perf_counter()
    y = np.asarray(y).astype(np.int64)
    oof = base.oof_scores.copy()
    best_epochs, models, rounds = list(base.best_epochs), list(base.fold_models), []
    for i in range(base.k):
        te, tr = np.flatnonzero(base.fold == i), np.flatnonzero(base.fold != i)
        seed = cfg.seed + 1000 * (i + 1)  # the fold's own seed and inner split, as cross_validate makes them
        a, b = stratified_split(y[tr], cfg.val_fraction, seed)
        teacher, fold_rounds = base.fold_models[i], []
        for r in range(st.rounds):
            idx, lab = pseudo_label(weak_probabilities(teacher, pool, cfg, st.views, st.seed + r), st.tau,
                                    st.max_pseudo)
            fold_rounds.append(round_counts(r + 1, pool, lab))
            if len(idx) == 0:
                break
            t = _student(cfg, x, y, tr[a], tr[b], seed, with_pseudo(extra, pool[idx], lab, real_share, per_epoch),
                         progress, f"self-train fold {i + 1}/{base.k} round {r + 1}")
            oof[te], best_epochs[i], teacher = t.predict(x[te]), t.best_epoch, t.model
            models[i] = t.model
        rounds.append(fold_rounds)
    threshold = calibrate_threshold(y, oof)
    metrics = binary_metrics(y, oof, threshold, n_boot=n_boot, seed=cfg.seed)
    fold_auc = [float(roc_auc_score(y[base.fold == i], oof[base.fold == i])) for i in range(base.k)]
    metrics.update(fold_auc_mean=float(np.mean(fold_auc)), fold_auc_std=float(np.std(fold_auc)), k=base.k)
    if snr is not None:
        metrics["snr_recall"] = snr_recall(y, oof, snr, threshold)
    cv = CVResult(cfg=cfg, k=base.k, oof_scores=oof, fold=base.fold.copy(), threshold=threshold, metrics=metrics,
                  fold_auc=fold_auc, best_epochs=best_epochs, seconds=time.perf_counter() - t0, fold_models=models)
    return cv, rounds


def final_student(cfg: TrainConfig, x, y, teacher_model, pool, st: SelfTrainConfig, epochs: int, *,
                  extra: ExtraCrops | None, real_share: float, per_epoch: int, progress=None):
    """The shipped model: the refit on all labels (teacher_model) pseudo-labels the pool, a student
    trains on all labels + those crops for `epochs`; `st.rounds` times. Returns (FitResult or None when
    no crop was confident, per round counts)."""
    res, rounds, teacher = None, [], teacher_model
    for r in range(st.rounds):
        idx, lab = pseudo_label(weak_probabilities(teacher, pool, cfg, st.views, st.seed + r), st.tau, st.max_pseudo)
        rounds.append(round_counts(r + 1, pool, lab))
        if len(idx) == 0:
            break
        res = fit(cfg, x, y, epochs=epochs, progress=progress,
                  extra=with_pseudo(extra, pool[idx], lab, real_share, per_epoch))
        teacher = res.model
    return res, rounds


def skip_reason(arch: str) -> str | None:
    """Why self-training cannot run on `arch` (None when it can)."""
    try:
        check_logit(arch)
    except ConfigError as e:
        return f"{e}; self-training skipped"
    return None


def self_train_step(cfg: TrainConfig, ls, cv: CVResult, teacher, extra: ExtraCrops | None, st: SelfTrainConfig, *,
                    archive, inject, crop_shape=None, progress=None, say=None):
    """`train_and_bundle`'s self-training: returns (cv, refit result, info for the manifest).

    cv / teacher: the base CV and the refit on all labels; both come back unchanged unless the
    self-trained CV beats the base CV (module docstring). info: tau, rounds, pool, per-fold and final
    pseudo-label counts per round and class, both CV ROC-AUCs, whether it was kept and why."""
    say = say or (lambda _m: None)
    t0 = time.perf_counter()
    info = {"rounds": st.rounds, "tau": st.tau, "views": st.views, "max_pseudo": st.max_pseudo, "used": False}
    why = skip_reason(cfg.arch)
    if why is None and len(cv.fold_models) != cv.k:  # a reused CV result (a sweep's) carries no fold models
        why = "the cross-validation was reused without its fold models (one teacher per fold); self-training skipped"
    if why is not None:
        say(f"warning: {why}")
        return cv, teacher, {**info, "skipped": why}
    real_share = inject.real_share if inject is not None else 0.5
    per_epoch = inject.per_epoch if inject is not None else PER_EPOCH
    pool, dropped = draw_pool(archive, st, ls.x, ls.crop_id, seed=st.seed + 17, crop_shape=crop_shape)
    info.update(pool=int(len(pool)), pool_dropped_labelled=dropped)
    say(f"self-training: {len(pool):,} archive crops in the pool, tau {st.tau}, {st.rounds} round(s), "
        f"one teacher per fold")
    scv, fold_rounds = self_train_cv(cfg, ls.x, ls.y, pool, st, cv, extra=extra, real_share=real_share,
                                     per_epoch=per_epoch, snr=ls.snr, progress=progress)
    base_auc, st_auc = cv.metrics["roc_auc"]["value"], scv.metrics["roc_auc"]["value"]
    info.update(cv_folds=fold_rounds, cv_roc_auc=round(st_auc, 4), base_cv_roc_auc=round(base_auc, 4))
    used = st_auc > base_auc + TIE
    info["reason"] = (f"CV ROC-AUC with self-training {st_auc:.4f} vs {base_auc:.4f} without, same {cv.k} folds "
                      f"(one teacher per fold): " + ("kept" if used else f"not kept (needs > {TIE:g} better)"))
    say(f"self-training: {info['reason']}")
    if not used:
        info["seconds"] = round(time.perf_counter() - t0, 1)
        return cv, teacher, info
    epochs = max(1, int(np.median(scv.best_epochs)))
    res, final = final_student(cfg, ls.x, ls.y, teacher.model, pool, st, epochs, extra=extra,
                               real_share=real_share, per_epoch=per_epoch, progress=progress)
    info.update(final=final, student_epochs=epochs)
    if res is None:  # the all-labels teacher was confident about nothing: ship it, say so
        info.update(used=False, reason=info["reason"] + "; but the refit pseudo-labelled no crop, so not kept")
        info["seconds"] = round(time.perf_counter() - t0, 1)
        return cv, teacher, info
    info["used"], info["seconds"] = True, round(time.perf_counter() - t0, 1)
    return scv, res, info
