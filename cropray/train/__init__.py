"""Training: config, losses, augmentations, the epoch loop, cross-validation and the bundle job."""

from cropray._lazy import lazy_exports

_EXPORTS = {
    "ARCH_DEFAULTS": "cropray.train.config",
    "TrainConfig": "cropray.train.config",
    "CVResult": "cropray.train.cv",
    "choose_k": "cropray.train.cv",
    "cross_validate": "cropray.train.cv",
    "FitResult": "cropray.train.fit",
    "check_labels": "cropray.train.fit",
    "fit": "cropray.train.fit",
    "train_and_bundle": "cropray.train.job",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)  # importing the package imports none of them
