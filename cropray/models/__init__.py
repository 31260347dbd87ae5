"""Model registry and architectures. `build_model(name, **hparams)`; names from `list_models()`.

Importing the package imports no torch: the per-architecture policy (`policy.py`: the regime table,
one `ArchSpec` per architecture) is torch-free; each architecture's module (one per family) is
imported the first time one of its models is built.
"""

from cropray._lazy import lazy_exports

_EXPORTS = {
    "ArchSpec": "cropray.models.policy",
    "MIN_LABELS": "cropray.models.policy",
    "REGIMES": "cropray.models.policy",
    "Regime": "cropray.models.policy",
    "arch_names": "cropray.models.policy",
    "arch_spec": "cropray.models.policy",
    "select_arch": "cropray.models.policy",
    "MODELS": "cropray.models._registry",
    "build_model": "cropray.models._registry",
    "hparam_names": "cropray.models._registry",
    "list_models": "cropray.models.policy",
    "model_class": "cropray.models._registry",
    "register_model": "cropray.models._registry",
    "unregister_model": "cropray.models._registry",
    "CropModel": "cropray.models._base",
    "LogitModel": "cropray.models._base",
    "RobustNorm": "cropray.models.preprocess",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
