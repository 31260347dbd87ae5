"""`--arch auto` as a comparison: the candidates that fit the label count, judged by the labels alone.

Every candidate (cropray.models.policy.auto_candidates: the label-free `dedoppler`, then the regime's
trained architectures without and with the archive's injected crops, cheapest first) is
cross-validated on the same folds (same seed, same labels: StratifiedKFold with the config's seed), so
all of them score the same out-of-fold crops. A candidate replaces the cheaper incumbent only when its
*paired* ROC-AUC gain on those crops has a lower confidence bound above zero (cropray.train.select);
otherwise the cheaper one ships, physics first. The winner's CV result is reused (threshold, metrics):
only the refit on all labels remains.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from cropray.models.policy import auto_candidates as candidates
from cropray.train.config import TrainConfig
from cropray.train.cv import CVResult, cross_validate
from cropray.train.select import CI, select

__all__ = ["Choice", "candidates", "compare_candidates"]


@dataclass
class Choice:
    cfg: TrainConfig  # resolved config of the winner
    cv: CVResult
    with_archive: bool
    table: list  # one dict per candidate: arch, archive, cv_auc [lo, hi], paired gain vs physics, chosen
    reason: str


def compare_candidates(cfg: TrainConfig, x, y, *, k=None, snr=None, extra=None, progress=None, say=None) -> Choice:
    """Cross-validate every candidate on the same folds and return the one the paired rule ships."""
    say = say or (lambda _m: None)
    rows, runs = [], []
    for arch, with_archive in candidates(len(y), extra is not None):
        t0 = time.perf_counter()
        rcfg = _for_arch(cfg, arch).resolve(arch, len(y))
        cv = cross_validate(rcfg, x, y, k=k, snr=snr, progress=progress, extra=extra if with_archive else None)
        auc = cv.metrics["roc_auc"]
        rows.append({"arch": arch, "archive": with_archive, "cv_auc": round(auc["value"], 4),
                     "cv_auc_lo": round(auc["lo"], 4), "cv_auc_hi": round(auc["hi"], 4),
                     "seconds": round(time.perf_counter() - t0, 1), "epochs": len(cv.history), "chosen": False})
        runs.append((rcfg, cv, with_archive))
        say(f"auto: {arch}{' + archive' if with_archive else ''}: CV ROC-AUC {auc['value']:.4f} "
            f"[{auc['lo']:.3f}, {auc['hi']:.3f}] in {rows[-1]['seconds']:.0f} s")
    rank, recs = select(y, [cv.oof_scores for _, cv, _ in runs], seed=cfg.seed)
    for row, rec in zip(rows, recs):
        row["gain_vs_physics"] = rec["vs_baseline"]  # None for physics itself
        row["gain_vs_incumbent"] = rec["vs_incumbent"]
    rows[rank]["chosen"] = True
    rcfg, cv, with_archive = runs[rank]
    name = f"{rows[rank]['arch']}{' + archive' if with_archive else ''}"
    if rank == 0:
        reason = (f"{name} ships: no learned candidate's paired ROC-AUC gain on the same {cv.k} folds' "
                  f"out-of-fold crops has a {CI:.0%} lower bound above zero")
    else:
        g = rows[rank]["gain_vs_incumbent"]
        inc = rows[recs[rank]["incumbent"]]["arch"]
        reason = (f"{name} ships: paired ROC-AUC gain over {inc} {g['gain']:+.4f} [{g['lo']:+.4f}, {g['hi']:+.4f}] "
                  f"({CI:.0%}) on the same {cv.k} folds' out-of-fold crops; a candidate needs a lower bound "
                  f"above zero over the cheaper one")
    return Choice(cfg=rcfg, cv=cv, with_archive=with_archive, table=rows, reason=reason)


def _for_arch(cfg: TrainConfig, arch: str) -> TrainConfig:
    """cfg for one candidate: only the model_kwargs that `arch` takes (a user's {"track_prior": false}
    is a CNN setting; the Siamese encoder and dedoppler have no such hyperparameter)."""
    from cropray.models import hparam_names

    names = set(hparam_names(arch))
    kw = {k: v for k, v in cfg.model_kwargs.items() if k in names}
    return dataclasses.replace(cfg, arch=arch, model_kwargs=kw)
