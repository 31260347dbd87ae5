"""Model registry and architectures. `build_model(name, **hparams)`; names from `list_models()`.

Importing this package registers every architecture (one module per family).
"""

from cropray.models import cnn, dedoppler, resnet, siamese  # noqa: F401  (registration side effects)
from cropray.models._base import CropModel
from cropray.models._registry import (
    MIN_LABELS,
    MODELS,
    build_model,
    hparam_names,
    list_models,
    register_model,
    select_arch,
)
from cropray.models.preprocess import RobustNorm

__all__ = ["MODELS", "MIN_LABELS", "CropModel", "RobustNorm", "build_model", "hparam_names",
           "list_models", "register_model", "select_arch"]
