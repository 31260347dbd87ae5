"""`TrainJob`: what one `cropray train` job is, as a typed, torch-free description; `PriorWork`: what a
caller already did for it (a sweep's CV and prepared archive), kept apart from the job itself.

A TrainJob is checked on construction (flags that need another flag, ranges), so a bad combination
fails before any crop is read. Field names follow the CLI flags; every message names the flag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cropray.errors import ConfigError
from cropray.train.config import TrainConfig

if TYPE_CHECKING:
    from cropray.inject import InjectConfig
    from cropray.train.self_train import SelfTrainConfig

MAX_TARGET_FPR = 0.5  # a false-alarm rate of half the backgrounds is no detection threshold


def check_target_fpr(target_fpr, archive) -> None:
    """ConfigError naming --target-fpr unless it is None or a rate in (0, 0.5) with an archive."""
    if target_fpr is None:
        return
    f = target_fpr
    if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.0 < f < MAX_TARGET_FPR:
        raise ConfigError(f"--target-fpr {f!r}: must be a false-alarm rate in (0, {MAX_TARGET_FPR:g}), e.g. 0.01")
    if archive is None:
        raise ConfigError("--target-fpr needs --archive ARCHIVE: the threshold is set on the archive's own screened "
                          "backgrounds")


@dataclass(frozen=True)
class TrainJob:
    """One training job: read `labels`, cross-validate, pick, refit, calibrate, write a bundle to `out`."""

    labels: str | Path  # labelled archive: Parquet file, directory, glob or URI
    out: str | Path  # bundle directory to write
    config: TrainConfig = field(default_factory=TrainConfig)  # arch "auto": the label count decides
    folds: int | None = None  # --folds: CV folds (None: min(5, minority class count))
    crop_shape: tuple[int, int] | None = None  # --crop-shape: for plain list columns
    overwrite: bool = False  # --overwrite: replace an existing bundle directory
    archive: str | None = None  # --archive: unlabelled archive whose backgrounds get injected signals
    inject: InjectConfig | None = None  # --archive-crops / --inject-config (None: defaults, the config's seed)
    self_train: SelfTrainConfig | None = None  # --self-train: pseudo-labels on archive crops (needs archive)
    compare: bool = True  # arch auto: compare the label count's candidates and dedoppler (--no-compare: False)
    path_cv: bool = True  # record every quick execution path's own CV quality in the bundle
    target_fpr: float | None = None  # --target-fpr F: threshold = the score a fraction F of held-back
    #   screened archive backgrounds exceed (needs archive); None: Youden's J on the out-of-fold scores
    extra: dict[str, Any] | None = None  # JSON-able, written into the manifest as is (e.g. the sweep)
    progress: bool | None = None  # epoch progress: bar on a terminal, lines elsewhere, False: silent

    def __post_init__(self) -> None:
        if self.self_train is not None and self.archive is None:
            raise ConfigError("--self-train needs --archive ARCHIVE: the unlabelled crops it pseudo-labels")
        check_target_fpr(self.target_fpr, self.archive)
        if self.folds is not None and (isinstance(self.folds, bool) or int(self.folds) != self.folds
                                       or self.folds < 2):
            raise ConfigError(f"--folds {self.folds!r}: cross-validation needs >= 2 folds")
        if not isinstance(self.config, TrainConfig):
            raise ConfigError(f"training config must be a TrainConfig, got {type(self.config).__name__}")


@dataclass(frozen=True)
class PriorWork:
    """Work the caller already did for this job, reused instead of redone (all optional).

    labeled: the LabeledSet read from `TrainJob.labels` (the archive is read once per job);
    cv: a CVResult of the job's config on these labels and folds (a sweep's winning trial, checked by
    cropray.tune.oof): no cross-validation, only the refit;
    archive: (ExtraCrops, summary) built from `TrainJob.archive` (a sweep's driver built it once)."""

    labeled: Any = None
    cv: Any = None
    archive: tuple | None = None
