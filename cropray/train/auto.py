"""`--arch auto` as a comparison: the candidates that fit the label count, judged by the labels alone.

Every candidate is cross-validated on the same folds (same seed, same labels: StratifiedKFold with the
config's seed), with and without the archive's injected crops when there are some, next to the
label-free `dedoppler` baseline. The best out-of-fold ROC-AUC wins; on a tie (within 1e-3) the cheaper
candidate wins: dedoppler, then without the archive. So a shipped model is never one the user's own
labels rate below the label-free baseline. The winner's CV result is reused (threshold, metrics): only
the refit on all labels remains.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from cropray.models.policy import label_free, regime_archs, regime_for
from cropray.train.config import TrainConfig
from cropray.train.cv import CVResult, cross_validate

TIE = 1e-3  # CV ROC-AUC differences below this are noise at these label counts; prefer the cheaper
# Trained architectures per comparison: the regime's default and the next it declares (few: siamese,
# shallow_cnn; mid: shallow_cnn, siamese; many: deep_cnn, shallow_cnn). A third (deep_cnn at 100-499
# labels) would cost more than the two others together; the sweep (`cropray tune`) still searches it.
MAX_TRAINED = 2


@dataclass
class Choice:
    cfg: TrainConfig  # resolved config of the winner
    cv: CVResult
    with_archive: bool
    table: list  # one dict per candidate: arch, archive, cv_auc [lo, hi], seconds, chosen
    reason: str


def candidates(n_labels: int, has_archive: bool) -> list[tuple[str, bool]]:
    """(arch, with archive) pairs: dedoppler, then the regime's first MAX_TRAINED architectures x
    {without, with archive}."""
    r = regime_for(n_labels)
    free = [a for a in label_free()]
    archs = [a for a in regime_archs(r.name) if a not in free][:MAX_TRAINED] if r is not None else []
    out = [(a, False) for a in free]
    for a in archs:
        if a in free:
            continue
        out.append((a, False))
        if has_archive:
            out.append((a, True))
    return out


def compare_candidates(cfg: TrainConfig, x, y, *, k=None, snr=None, extra=None, progress=None, say=None) -> Choice:
    """Cross-validate every candidate on the same folds and return the best (module docstring)."""
    say = say or (lambda _m: None)
    rows, best = [], None
    for rank, (arch, with_archive) in enumerate(candidates(len(y), extra is not None)):
        t0 = time.perf_counter()
        rcfg = _for_arch(cfg, arch).resolve(arch, len(y))
        cv = cross_validate(rcfg, x, y, k=k, snr=snr, progress=progress, extra=extra if with_archive else None)
        auc = cv.metrics["roc_auc"]
        row = {"arch": arch, "archive": with_archive, "cv_auc": round(auc["value"], 4),
               "cv_auc_lo": round(auc["lo"], 4), "cv_auc_hi": round(auc["hi"], 4),
               "seconds": round(time.perf_counter() - t0, 1), "epochs": len(cv.history), "chosen": False}
        rows.append(row)
        say(f"auto: {arch}{' + archive' if with_archive else ''}: CV ROC-AUC {auc['value']:.4f} "
            f"[{auc['lo']:.3f}, {auc['hi']:.3f}] in {row['seconds']:.0f} s")
        if best is None or auc["value"] > best[0] + TIE:  # candidates come cheapest first
            best = (auc["value"], rank, rcfg, cv, with_archive)
    _, rank, rcfg, cv, with_archive = best
    rows[rank]["chosen"] = True
    runner_up = max((r["cv_auc"] for i, r in enumerate(rows) if i != rank), default=None)
    reason = (f"{rows[rank]['arch']}{' + archive' if with_archive else ''} has the best CV ROC-AUC "
              f"({rows[rank]['cv_auc']:.4f}" + (f"; next best {runner_up:.4f}" if runner_up is not None else "")
              + f") of {len(rows)} candidates on the same {cv.k} folds; ties within {TIE:g} go to the cheaper")
    return Choice(cfg=rcfg, cv=cv, with_archive=with_archive, table=rows, reason=reason)


def _for_arch(cfg: TrainConfig, arch: str) -> TrainConfig:
    """cfg for one candidate: only the model_kwargs that `arch` takes (a user's {"track_prior": false}
    is a CNN setting; the Siamese encoder and dedoppler have no such hyperparameter)."""
    from cropray.models import hparam_names

    names = set(hparam_names(arch))
    kw = {k: v for k, v in cfg.model_kwargs.items() if k in names}
    return dataclasses.replace(cfg, arch=arch, model_kwargs=kw)
