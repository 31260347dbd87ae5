"""Training: config, losses, augmentations, the epoch loop, cross-validation and the bundle job."""

from cropray.train.config import ARCH_DEFAULTS, TrainConfig
from cropray.train.cv import CVResult, choose_k, cross_validate
from cropray.train.fit import FitResult, check_labels, fit
from cropray.train.job import train_and_bundle

__all__ = ["ARCH_DEFAULTS", "CVResult", "FitResult", "TrainConfig", "check_labels", "choose_k",
           "cross_validate", "fit", "train_and_bundle"]
