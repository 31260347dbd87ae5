"""Training: config, losses, augmentations, the epoch loop, cross-validation and the bundle job."""

from cropray._lazy import lazy_exports

# torch-free, and eager: the function `fit` shares its name with the submodule, which would otherwise
# shadow it in the package once anything imports cropray.train.fit
from cropray.train.fit import FitResult, check_labels, fit

_EXPORTS = {
    "TrainConfig": "cropray.train.config",
    "CVResult": "cropray.train.cv",
    "choose_k": "cropray.train.cv",
    "cross_validate": "cropray.train.cv",
    "train_and_bundle": "cropray.train.job",
    "TrainJob": "cropray.train.jobspec",
    "PriorWork": "cropray.train.jobspec",
}
__all__ = ["FitResult", "check_labels", "fit", *sorted(_EXPORTS)]
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)  # importing the package imports none of them
