"""Training configuration: one small typed dataclass, free of torch and Ray, validated on construction.

Fields whose best value depends on the architecture default to `None` and are filled from the
architecture's declared `train_defaults` (cropray.models.policy, torch-free) by `TrainConfig.resolve(arch)`
once the architecture is known (`arch="auto"` is decided by the label count, so the defaults cannot be
applied earlier). `to_dict()` is dumped beside
every bundle; `from_dict()` is how `--config` JSON and sweep configurations come in.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from cropray.errors import ConfigError
from cropray.models import policy
from cropray.train import budget
from cropray.validate import boolean, choice, describe, integer, mapping, number, validate

# loss family (ArchSpec.loss_family: what the model's `loss_inputs` returns) -> the losses that fit it
LOSS_FAMILIES: dict[str, tuple[str, ...]] = {"logit": ("bce", "focal"), "metric": ("supcon", "contrastive")}
CNN_LOSSES, METRIC_LOSSES = LOSS_FAMILIES["logit"], LOSS_FAMILIES["metric"]
BALANCES = ("pos_weight", "sampler", "none")
DEVICES = ("auto", "cpu", "cuda")
def arch_choices() -> tuple[str, ...]:
    """Valid `arch` values: auto, then every registered architecture (read when checked, so an
    architecture registered after import counts)."""
    return ("auto", *policy.arch_names())


def _registered(v: Any) -> bool:  # a registered architecture, maybe one a plugin registers on first use
    return isinstance(v, str) and policy.known(v)


@dataclass(frozen=True)
class TrainConfig:
    """How to train one model. `None` = the architecture's default (its spec's `train_defaults`)."""

    arch: str = choice("auto", arch_choices, accept=_registered)  # auto (by label count) or a registered
    #   architecture (cropray.models.list_models())
    seed: int = integer(0, 0, 2**31 - 1)  # seeds torch, numpy, folds, augmentations: same seed + data -> same
    #   model
    epochs: int | None = integer(None, 0, 1000, nullable=True)  # maximum passes over the training split
    #   (early stopping may end sooner)
    batch_size: int | None = integer(None, 2, 4096, nullable=True)  # crops per optimiser step
    epoch_crops: int = integer(256, 1, 10_000_000)  # minimum crops drawn per epoch: small sets are cycled
    #   (fresh augmented views)
    lr: float | None = number(None, 1e-6, 1.0, nullable=True)  # AdamW learning rate
    weight_decay: float = number(1e-4, 0.0, 1.0)  # AdamW decoupled weight decay
    dropout: float | None = number(None, 0.0, 0.95, nullable=True)  # model dropout; None keeps the model's
    #   own default
    embedding_dim: int | None = integer(None, 2, 1024, nullable=True)  # siamese embedding size; None = model
    #   default (64); ignored by CNNs
    model_kwargs: dict = mapping(default_factory=dict)  # other build_model hyperparameters (checked there)
    loss: str | None = choice(None, CNN_LOSSES + METRIC_LOSSES, nullable=True)  # bce | focal for logit models
    #   (CNNs), supcon | contrastive for metric (siamese)
    focal_gamma: float = number(2.0, 0.0, 10.0)  # focal loss focusing exponent (0 = BCE)
    focal_alpha: float | None = number(None, 0.0, 1.0, nullable=True)  # focal loss positive-class weight;
    #   None = no alpha weighting
    temperature: float = number(0.1, 0.01, 1.0)  # supcon softmax temperature (lower = harder negatives weigh
    #   more)
    margin: float = number(1.0, 0.0, 2.0)  # contrastive loss negative margin on L2 distance of unit
    #   embeddings (0..2)
    balance: str | None = choice(None, BALANCES, nullable=True)  # class imbalance: pos_weight (loss) |
    #   sampler (balanced batches) | none
    augment: bool = boolean(True)  # apply the spectrogram-valid augmentations of cropray.train.augment
    aug_freq_roll: int = integer(16, 0, 256)  # max circular roll along frequency, in bins
    aug_freq_flip: bool = boolean(True)  # random frequency mirror (flips drift sign)
    aug_time_shift: int = integer(4, 0, 64)  # max circular roll along time, in rows
    aug_noise: float = number(0.1, 0.0, 1.0)  # max added Gaussian noise, as a fraction of the crop's robust
    #   noise scale
    aug_level_decades: float = number(2.0, 0.0, 6.0)  # random overall gain spread, decades (log-uniform,
    #   +-half)
    aug_tilt: float = number(0.5, 0.0, 3.0)  # max bandpass tilt: gain exp(a*f), f in [-1, 1], |a| <= aug_tilt
    pre_normalise: bool = boolean(True)  # normalise crops once with the model's parameter-free preprocessing
    #   and augment after it (~2x faster steps on CPU); level/tilt augmentations are then skipped (no-ops there)
    ema: float = number(0.98, 0.0, 0.9999)  # decay of the weight moving average that is validated and kept (0
    #   = raw weights)
    val_fraction: float = number(0.2, 0.05, 0.5)  # share of the training split held out for early stopping
    #   (stratified)
    patience: int | None = integer(None, 1, 1000, nullable=True)  # epochs without validation improvement
    #   before stopping
    min_epochs: int | None = integer(None, 0, 1000, nullable=True)  # no stopping, and no earlier weights
    #   kept, before this epoch (None = epochs // 4, at least min(5, epochs // 2): cropray.train.budget)
    cv_patience: int | None = integer(None, 0, 1000, nullable=True)  # cross-validation stops every fold
    #   after this many epochs without a 0.002 rise of the CV ROC-AUC past min_epochs (None = patience;
    #   0 = never)
    device: str = choice("auto", DEVICES)  # auto (CUDA when present, else CPU) | cpu | cuda

    def __post_init__(self) -> None:
        # Each field's rule (cropray.validate); numpy scalars / integral floats from sweep samplers
        # become plain Python.
        validate(self, "training config")

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
        return describe(cls)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with `changes` applied (validated; None values in `changes` are ignored)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        unknown = sorted(set(changes) - set(self.keys()))
        if unknown:
            raise ConfigError(f"unknown training config key(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    def resolve(self, arch: str, n_labels: int | None = None) -> TrainConfig:
        """Concrete config for `arch`: arch set, None fields filled from its spec's train_defaults and
        the training budget for `n_labels` labels (cropray.train.budget: epoch cap, warm-up, CV
        patience), epochs and loss checked against its loss family."""
        spec = policy.arch_spec(arch)  # ConfigError listing the valid names
        filled = {k: v for k, v in spec.train_defaults.items() if getattr(self, k) is None}
        if self.epochs is None and "epochs" in filled:
            filled["epochs"] = budget.epoch_cap(filled["epochs"], n_labels)
        cfg = dataclasses.replace(self, arch=arch, **filled)
        if cfg.min_epochs is None:
            # Why a warm-up: with a cosine schedule and weight averaging the model keeps improving on
            # fresh crops after a 3-40 crop validation split stops showing it (measured: 200 labels,
            # best-at-epoch-5 0.933 vs 0.955 at epochs 15-30); the CV plateau stop ends the rest.
            cfg = dataclasses.replace(cfg, min_epochs=budget.warmup_epochs(cfg.epochs))
        if cfg.cv_patience is None:
            cfg = dataclasses.replace(cfg, cv_patience=cfg.patience)
        if spec.fit_free:
            return cfg
        if cfg.epochs < 1:
            raise ConfigError(f"epochs = {cfg.epochs}: {arch} must train for >= 1 epoch "
                              f"(0 is only for label-free models: {', '.join(policy.label_free())})", field="epochs")
        valid_losses = LOSS_FAMILIES[spec.loss_family]
        if cfg.loss not in valid_losses:
            raise ConfigError(f"loss {cfg.loss!r} does not fit arch {arch!r}; valid: {', '.join(valid_losses)}",
                              field="loss")
        return cfg

