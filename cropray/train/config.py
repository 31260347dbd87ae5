"""Training configuration: one small typed dataclass, free of torch and Ray, validated on construction.

Fields whose best value depends on the architecture default to `None` and are filled from the
architecture's declared `train_defaults` (cropray.models.policy, torch-free) by `TrainConfig.resolve(arch)`
once the architecture is known (`arch="auto"` is decided by the label count, so the defaults cannot be
applied earlier). `to_dict()` is dumped beside
every bundle; `from_dict()` is how `--config` JSON and sweep configurations come in.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from cropray.errors import ConfigError
from cropray.models import policy

# loss family (ArchSpec.loss_family: what the model's `loss_inputs` returns) -> the losses that fit it
LOSS_FAMILIES: dict[str, tuple[str, ...]] = {"logit": ("bce", "focal"), "metric": ("supcon", "contrastive")}
CNN_LOSSES, METRIC_LOSSES = LOSS_FAMILIES["logit"], LOSS_FAMILIES["metric"]
BALANCES = ("pos_weight", "sampler", "none")
DEVICES = ("auto", "cpu", "cuda")
# Fields that may be null (= architecture or model default).
_NULLABLE = {"epochs", "batch_size", "lr", "dropout", "embedding_dim", "loss", "focal_alpha", "balance",
             "patience", "min_epochs"}


def arch_choices() -> tuple[str, ...]:
    """Valid `arch` values: auto, then every registered architecture (read when checked, so an
    architecture registered after import counts)."""
    return ("auto", *policy.arch_names())


# field -> (kind, lo, hi) for numbers, or (kind, choices) for strings. Ranges are inclusive.
_RULES: dict[str, tuple] = {
    "arch": ("choice", arch_choices),
    "seed": ("int", 0, 2**31 - 1),
    "epochs": ("int", 0, 1000),
    "batch_size": ("int", 2, 4096),
    "epoch_crops": ("int", 1, 10_000_000),
    "lr": ("float", 1e-6, 1.0),
    "weight_decay": ("float", 0.0, 1.0),
    "dropout": ("float", 0.0, 0.95),
    "embedding_dim": ("int", 2, 1024),
    "model_kwargs": ("dict",),
    "loss": ("choice", CNN_LOSSES + METRIC_LOSSES),
    "focal_gamma": ("float", 0.0, 10.0),
    "focal_alpha": ("float", 0.0, 1.0),
    "temperature": ("float", 0.01, 1.0),
    "margin": ("float", 0.0, 2.0),
    "balance": ("choice", BALANCES),
    "augment": ("bool",),
    "aug_freq_roll": ("int", 0, 256),
    "aug_freq_flip": ("bool",),
    "aug_time_shift": ("int", 0, 64),
    "aug_noise": ("float", 0.0, 1.0),
    "aug_level_decades": ("float", 0.0, 6.0),
    "aug_tilt": ("float", 0.0, 3.0),
    "pre_normalise": ("bool",),
    "ema": ("float", 0.0, 0.9999),
    "val_fraction": ("float", 0.05, 0.5),
    "patience": ("int", 1, 1000),
    "min_epochs": ("int", 0, 1000),
    "device": ("choice", DEVICES),
}


@dataclass(frozen=True)
class TrainConfig:
    """How to train one model. `None` = the architecture's default (its spec's `train_defaults`)."""

    arch: str = "auto"  # auto (by label count) or a registered architecture (cropray.models.list_models())
    seed: int = 0  # seeds torch, numpy, folds, augmentations: same seed + data -> same model
    epochs: int | None = None  # maximum passes over the training split (early stopping may end sooner)
    batch_size: int | None = None  # crops per optimiser step
    epoch_crops: int = 256  # minimum crops drawn per epoch: small sets are cycled (fresh augmented views)
    lr: float | None = None  # AdamW learning rate
    weight_decay: float = 1e-4  # AdamW decoupled weight decay
    dropout: float | None = None  # model dropout; None keeps the model's own default
    embedding_dim: int | None = None  # siamese embedding size; None = model default (64); ignored by CNNs
    model_kwargs: dict = field(default_factory=dict)  # other build_model hyperparameters (checked there)
    loss: str | None = None  # bce | focal for logit models (CNNs), supcon | contrastive for metric (siamese)
    focal_gamma: float = 2.0  # focal loss focusing exponent (0 = BCE)
    focal_alpha: float | None = None  # focal loss positive-class weight; None = no alpha weighting
    temperature: float = 0.1  # supcon softmax temperature (lower = harder negatives weigh more)
    margin: float = 1.0  # contrastive loss negative margin on L2 distance of unit embeddings (0..2)
    balance: str | None = None  # class imbalance: pos_weight (loss) | sampler (balanced batches) | none
    augment: bool = True  # apply the spectrogram-valid augmentations of cropray.train.augment
    aug_freq_roll: int = 16  # max circular roll along frequency, in bins
    aug_freq_flip: bool = True  # random frequency mirror (flips drift sign)
    aug_time_shift: int = 4  # max circular roll along time, in rows
    aug_noise: float = 0.1  # max added Gaussian noise, as a fraction of the crop's robust noise scale
    aug_level_decades: float = 2.0  # random overall gain spread, decades (log-uniform, +-half)
    aug_tilt: float = 0.5  # max bandpass tilt: gain exp(a*f), f in [-1, 1], |a| <= aug_tilt
    pre_normalise: bool = True  # normalise crops once with the model's parameter-free preprocessing and
    #   augment after it (~2x faster steps on CPU); level/tilt augmentations are then skipped (no-ops there)
    ema: float = 0.98  # decay of the weight moving average that is validated and kept (0 = raw weights)
    val_fraction: float = 0.2  # share of the training split held out for early stopping (stratified)
    patience: int | None = None  # epochs without validation improvement before stopping
    min_epochs: int | None = None  # no stopping, and no earlier weights kept, before this epoch (None = epochs // 2)
    device: str = "auto"  # auto (CUDA when present, else CPU) | cpu | cuda

    def __post_init__(self) -> None:
        for f in fields(self):
            # Coerce numpy scalars / integral floats (sweep samplers produce them) to plain Python.
            object.__setattr__(self, f.name, _check(f.name, getattr(self, f.name)))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build from a JSON-like dict; unknown keys or out-of-range values -> ConfigError naming them."""
        if not isinstance(d, dict):
            raise ConfigError(f"training config must be a JSON object, got {type(d).__name__}")
        unknown = sorted(set(d) - set(cls.keys()))
        if unknown:
            raise ConfigError(f"unknown training config key(s): {', '.join(unknown)}; valid keys: "
                              f"{', '.join(cls.keys())}")
        return cls(**d)

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def describe(cls) -> str:
        """One line per key with its valid range, for error messages and --help."""
        return "; ".join(f"{k}: {_rule_text(_RULES[k])}" for k in cls.keys())

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with `changes` applied (validated; None values in `changes` are ignored)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        unknown = sorted(set(changes) - set(self.keys()))
        if unknown:
            raise ConfigError(f"unknown training config key(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    def resolve(self, arch: str) -> TrainConfig:
        """Concrete config for `arch`: arch set, None fields filled from its spec's train_defaults,
        epochs and loss checked against its loss family."""
        spec = policy.arch_spec(arch)  # ConfigError listing the valid names
        filled = {k: v for k, v in spec.train_defaults.items() if getattr(self, k) is None}
        cfg = dataclasses.replace(self, arch=arch, **filled)
        if cfg.min_epochs is None:
            # Why half: with a cosine schedule and weight averaging the model keeps improving on fresh
            # crops long after a 10-40 crop validation split stops showing it (measured: 200 labels,
            # best-at-epoch-5 0.933 vs 0.955 at epochs 15-30).
            cfg = dataclasses.replace(cfg, min_epochs=cfg.epochs // 2)
        if spec.fit_free:
            return cfg
        if cfg.epochs < 1:
            raise ConfigError(f"epochs = {cfg.epochs}: {arch} must train for >= 1 epoch "
                              f"(0 is only for label-free models: {', '.join(policy.label_free())})")
        valid_losses = LOSS_FAMILIES[spec.loss_family]
        if cfg.loss not in valid_losses:
            raise ConfigError(f"loss {cfg.loss!r} does not fit arch {arch!r}; valid: {', '.join(valid_losses)}")
        return cfg


def _check(name: str, v: Any) -> Any:
    """Validate one field; return it as a plain Python value. ConfigError names the key and range."""
    rule = _RULES[name]
    kind = rule[0]
    if v is None:
        if name not in _NULLABLE:
            raise ConfigError(f"training config {name!r} must not be null; valid: {_rule_text(rule)}")
        return None
    if kind == "choice":
        if name == "arch" and isinstance(v, str) and policy.known(v):  # registered (maybe via a plugin)
            return v
        if v not in _choices(rule):
            raise ConfigError(f"training config {name!r} = {v!r} is not valid; valid: {_rule_text(rule)}")
        return v
    if kind == "bool" and not isinstance(v, (bool, np.bool_)):
        raise ConfigError(f"training config {name!r} = {v!r} must be true or false")
    if kind == "bool":
        return bool(v)
    if kind == "dict":
        if not isinstance(v, dict):
            raise ConfigError(f"training config {name!r} must be a JSON object, got {v!r}")
        return dict(v)
    ok = isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
    if ok and kind == "int":
        ok = float(v).is_integer()
    if not ok or not (rule[1] <= v <= rule[2]):
        raise ConfigError(f"training config {name!r} = {v!r} is out of range; valid: {_rule_text(rule)}")
    return int(v) if kind == "int" else float(v)


def _rule_text(rule: tuple) -> str:
    kind = rule[0]
    if kind == "choice":
        return " | ".join(_choices(rule))
    if kind in ("bool", "dict"):
        return {"bool": "true | false", "dict": "JSON object"}[kind]
    fmt = "{}" if kind == "int" else "{:g}"
    return f"{kind} in [{fmt.format(rule[1])}, {fmt.format(rule[2])}]"


def _choices(rule: tuple) -> tuple:
    return rule[1]() if callable(rule[1]) else rule[1]
