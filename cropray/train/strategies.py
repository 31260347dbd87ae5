"""How a training job gets its cross-validation: three named strategies, one chosen per job.

* `AutoComparison` (arch auto, compare on): every candidate for the label count and `dedoppler` on the
  same folds; the paired rule picks (cropray.train.auto, cropray.train.select).
* `ReusedCV`: the caller already cross-validated this very config on these labels and folds (a
  sweep's winning trial): nothing is rerun.
* `PlainCV`: one cross-validation of the resolved config (an architecture chosen by hand, or
  `--no-compare`).

Each returns a `CVChoice`: the config to refit, its CVResult, the archive crops the refit trains on
(None when the chosen candidate trains without them) and the comparison record (auto only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cropray.train.config import TrainConfig


@dataclass
class CVChoice:
    cfg: TrainConfig  # resolved config of the model to refit
    cv: Any  # CVResult
    crops: Any  # ExtraCrops the refit trains on, or None
    comparison: dict | None = None  # {"candidates": [...], "reason": str} (AutoComparison only)


@dataclass(frozen=True)
class AutoComparison:
    cfg: TrainConfig  # the job's config, arch "auto" (each candidate resolves its own)
    name: str = "auto comparison"

    def run(self, rcfg: TrainConfig, ls, crops, *, k, progress, say) -> CVChoice:
        from cropray.train.auto import compare_candidates

        ch = compare_candidates(self.cfg, ls.x, ls.y, k=k, snr=ls.snr, extra=crops, progress=progress, say=say)
        say(f"auto: {ch.reason}")
        return CVChoice(ch.cfg, ch.cv, crops if ch.with_archive else None,
                        {"candidates": ch.table, "reason": ch.reason})


@dataclass(frozen=True)
class ReusedCV:
    cv: Any  # the caller's CVResult (same config, labels, folds)
    name: str = "reused cross-validation"

    def run(self, rcfg: TrainConfig, ls, crops, *, k, progress, say) -> CVChoice:
        return CVChoice(rcfg, self.cv, crops)


@dataclass(frozen=True)
class PlainCV:
    name: str = "cross-validation"

    def run(self, rcfg: TrainConfig, ls, crops, *, k, progress, say) -> CVChoice:
        from cropray.train.cv import cross_validate

        return CVChoice(rcfg, cross_validate(rcfg, ls.x, ls.y, k=k, snr=ls.snr, progress=progress, extra=crops), crops)


def strategy_for(cfg: TrainConfig, compare: bool, reused_cv=None):
    """The job's strategy: the auto comparison, else the caller's CV, else a plain CV."""
    if compare and cfg.arch == "auto":
        return AutoComparison(cfg)
    if reused_cv is not None:
        return ReusedCV(reused_cv)
    return PlainCV()
