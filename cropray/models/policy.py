"""Per-architecture policy as data, torch-free: the regime table and one `ArchSpec` per architecture.

This is the single source of what cropray knows about an architecture outside its torch module: the
CLI's `--arch` choices, `TrainConfig`'s defaults and loss check, the sweep spaces (which architectures a
regime offers and what is searched for each), the bench's model list, the bundle's "score" line and the
tests' model lists are all read from here. It imports neither torch nor Ray, so `--help` and config
validation stay cheap; the model class (torch) is imported from `ArchSpec.module` only when a model is
built, and carries its spec as `cls.spec`.

Adding an architecture: a `CropModel` subclass decorated with `@register_model(ArchSpec(...))`
(cropray.models._registry), or a built-in spec below plus `@register_model("name")` on its class.
In Ray workers a class registered only in the driver does not exist; name its module in
`CROPRAY_MODEL_PLUGINS` (`name=module:function,...`, read on a lookup miss in every process).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field

from cropray.errors import ConfigError

PLUGINS_ENV = "CROPRAY_MODEL_PLUGINS"


# --- search-space parameters (what an architecture offers a sweep; walked by cropray.tune.spaces) ---
@dataclass(frozen=True)
class Float:
    low: float
    high: float
    default: float
    log: bool = False


@dataclass(frozen=True)
class Int:
    low: int
    high: int
    default: int
    log: bool = False
    model: bool = False  # a build_model hyperparameter (goes to TrainConfig.model_kwargs)


@dataclass(frozen=True)
class Choice:
    options: tuple
    default: str
    branches: dict = field(default_factory=dict)  # option -> sub-space sampled only for that option


# --- the regime table: label-count regimes ---
@dataclass(frozen=True)
class Regime:
    name: str
    lo: int  # labels, inclusive
    hi: int | None  # inclusive; None = no upper bound
    default: str  # the architecture `--arch auto` picks here, and the sweep's default configuration

    def fits(self, n_labels: int) -> bool:
        return n_labels >= self.lo and (self.hi is None or n_labels <= self.hi)

    @property
    def label_range(self) -> str:
        return f"{self.lo}-{self.hi}" if self.hi is not None else f"{self.lo}+"


REGIMES: tuple[Regime, ...] = (Regime("few", 25, 99, "siamese"), Regime("mid", 100, 499, "shallow_cnn"),
                               Regime("many", 500, None, "deep_cnn"))
MIN_LABELS = REGIMES[0].lo


@dataclass(frozen=True)
class ArchSpec:
    """What one architecture declares. The training interface itself (what the loss consumes, the
    finalize step) is methods of its class: `CropModel.loss_inputs`, `score_from`, `finalize`."""

    name: str
    summary: str  # one line for --help and the README
    loss_family: str  # "logit": bce | focal on (B,) logits; "metric": supcon | contrastive on (B, D)
    #   embeddings; "none": label-free (nothing to fit, labels only calibrate the threshold)
    train_defaults: dict  # TrainConfig values for the fields left at None (`TrainConfig.resolve`)
    score_meaning: str  # what the score means, written into every bundle manifest
    param_budget: tuple[int, int]  # (min, max) parameters of the default build (tests check it)
    search: dict = field(default_factory=dict)  # regime name -> sub-space searched for this architecture
    #   when a sweep of that regime draws it: its keys ARE the regimes this architecture fits
    module: str | None = None  # module defining the class (imported on first build); None: registered live
    reference: bool = False  # the seed design: the bench's naive baseline and end-to-end model
    score_range: tuple[float, float] | None = None  # bounds every score lies in (None: unbounded)

    @property
    def fit_free(self) -> bool:
        """Label-free: nothing to train (e.g. a physics baseline)."""
        return self.loss_family == "none"

    @property
    def regimes(self) -> tuple[str, ...]:
        return tuple(self.search)


_CNN_LOSS = Choice(("bce", "focal"), "bce", {"focal": {"focal_gamma": Float(0.5, 4.0, 2.0)}})
# shallow_cnn lr tops at 5e-3: at 1e-2 its refit on 1,000 labels diverged to NaN for 2 of 3 seeds.
_SHALLOW = {"dropout": Float(0.0, 0.7, 0.5), "lr": Float(3e-4, 5e-3, 2e-3, log=True)}
_SIAMESE = {"embedding_dim": Int(16, 256, 64, log=True), "dropout": Float(0.0, 0.5, 0.2),
            "lr": Float(1e-4, 1e-2, 1e-3, log=True)}
_DEEP = {"dropout": Float(0.0, 0.6, 0.3), "lr": Float(1e-4, 1e-2, 1e-3, log=True)}

_BUILTIN = (
    ArchSpec("siamese", "L2-normalised embedding scored against a stored gallery of both classes",
             "metric", dict(epochs=60, batch_size=32, lr=1e-3, loss="supcon", balance="sampler", patience=8),
             "gallery similarity score in [0, 1] (rule in hparams)", (100_000, 200_000),
             search={"few": {**_SIAMESE, "loss": Choice(("supcon", "contrastive"), "supcon", {
                 "supcon": {"temperature": Float(0.03, 0.5, 0.1, log=True)},
                 "contrastive": {"margin": Float(0.25, 1.5, 1.0)}})},
                 "mid": dict(_SIAMESE)},
             module="cropray.models.siamese", score_range=(0.0, 1.0)),
    ArchSpec("shallow_cnn", "the seed's 3-conv SignalClassifier plus the de-Doppler track prior",
             "logit", dict(epochs=40, batch_size=32, lr=2e-3, loss="bce", balance="pos_weight", patience=6),
             "sigmoid probability in [0, 1]", (int(0.9 * 93_000), int(1.1 * 93_000)),
             search={"few": dict(_SHALLOW), "mid": {**_SHALLOW, "loss": _CNN_LOSS},
                     "many": {**_SHALLOW, "loss": _CNN_LOSS}},
             module="cropray.models.cnn", reference=True, score_range=(0.0, 1.0)),
    ArchSpec("deep_cnn", "residual CNN (width, depth) plus the de-Doppler track prior",
             "logit", dict(epochs=30, batch_size=64, lr=1e-3, loss="bce", balance="pos_weight", patience=5),
             "sigmoid probability in [0, 1]", (400_000, 600_000),
             search={"mid": {**_DEEP, "loss": _CNN_LOSS},
                     "many": {**_DEEP, "width": Int(16, 64, 40, log=True, model=True),
                              "depth": Int(1, 3, 1, model=True), "loss": _CNN_LOSS}},
             module="cropray.models.resnet", score_range=(0.0, 1.0)),
    # Label-free physics baseline: nothing to train, labels only calibrate its threshold.
    ArchSpec("dedoppler", "label-free best straight-track SNR (Taylor-tree de-Doppler search)",
             "none", dict(epochs=0, batch_size=256, lr=1e-3, loss="bce", balance="none", patience=1),
             "best straight-track SNR (unbounded, ~3-5 for pure noise)", (0, 0),
             module="cropray.models.dedoppler"),
)
_SPECS: dict[str, ArchSpec] = {s.name: s for s in _BUILTIN}  # registration order = listing order


def register_spec(spec: ArchSpec) -> ArchSpec:
    """Add an architecture's spec (`register_model` does this for a live class); checked here."""
    if spec.name in _SPECS or spec.name == "auto":
        raise ConfigError(f"architecture {spec.name!r} registered twice")
    if spec.loss_family not in ("logit", "metric", "none"):
        raise ConfigError(f"{spec.name}: loss_family {spec.loss_family!r} is not logit, metric or none")
    unknown = sorted(set(spec.search) - {r.name for r in REGIMES})
    if unknown:
        raise ConfigError(f"{spec.name}: unknown regime(s) {', '.join(unknown)} in its search spaces")
    _SPECS[spec.name] = spec
    return spec


def unregister_spec(name: str) -> None:
    if name in {s.name for s in _BUILTIN}:
        raise ConfigError(f"{name!r} is built in and cannot be unregistered")
    _SPECS.pop(name, None)


def arch_names() -> tuple[str, ...]:
    """Registered architectures, built-ins first in their declaration order."""
    return tuple(_SPECS)


def list_models() -> list[str]:
    """Registered architecture names, sorted."""
    return sorted(_SPECS)


def known(name: str) -> bool:
    """Whether `name` is registered (after trying its CROPRAY_MODEL_PLUGINS entry, if any)."""
    return name in _SPECS or _load_plugin(name)


def arch_spec(name: str) -> ArchSpec:
    """The spec of `name`; ConfigError listing the valid names when it is unknown."""
    if not known(name):
        raise ConfigError(f"unknown model {name!r}; valid: {', '.join(sorted(_SPECS))}")
    return _SPECS[name]


def label_free() -> tuple[str, ...]:
    """Architectures that need no labels (for messages: 'or score with the label-free ...')."""
    return tuple(n for n, s in _SPECS.items() if s.fit_free)


def baseline_arch() -> str:
    """The label-free baseline every report compares against (the first label-free architecture)."""
    return label_free()[0]


def reference_arch() -> str:
    return next(n for n, s in _SPECS.items() if s.reference)


def regime(name: str) -> Regime:
    for r in REGIMES:
        if r.name == name:
            return r
    raise ConfigError(f"unknown regime {name!r}; valid: {', '.join(r.name for r in REGIMES)}")


def regime_for(n_labels: int) -> Regime | None:
    return next((r for r in REGIMES if r.fits(n_labels)), None)


def regime_archs(name: str) -> tuple[str, ...]:
    """Architectures a regime's sweep offers: its default first, then every spec declaring the regime."""
    default = regime(name).default
    return (default, *(n for n, s in _SPECS.items() if name in s.search and n != default))


def select_arch(n_labels: int) -> str:
    """`--arch auto`: the default architecture of the label count's regime (the table above)."""
    n = int(n_labels)
    r = regime_for(n)
    if r is None:
        raise ConfigError(f"{n} labelled crops found; training needs >= {MIN_LABELS} "
                          f"(label more crops, or score with the label-free {' / '.join(label_free())} model)")
    return r.default


# --- `--arch auto`'s comparison: which architectures are trained for a label count ---
# Trained architectures per comparison: the regime's default and the next it declares (few: siamese,
# shallow_cnn; mid: shallow_cnn, siamese; many: deep_cnn, shallow_cnn). A third (deep_cnn at 100-499
# labels) would cost more than the two others together; the sweep (`cropray tune`) still searches it.
MAX_TRAINED = 2
# Architectures `auto` does not train, with the measurement that put them out. The Siamese encoder has no
# logit to anchor to the de-Doppler prior, and it does not earn its place next to it: at 40 labels of
# cropray's own generator its CV ROC-AUC read 0.765 against dedoppler's 0.864 (shallow_cnn 0.876); at 50
# labels of the outside simulator (research/outside_sim) 0.548 on fresh crops against dedoppler's 0.793 and
# the anchored shallow_cnn's 0.796 (research/results/injection_modes). `--arch siamese` and the sweep's
# few-label space still offer it.
AUTO_EXCLUDED = {"siamese": "no track prior to anchor to; below dedoppler on fresh crops at 40-50 labels"}


def auto_candidates(n_labels: int, has_archive: bool) -> list[tuple[str, bool]]:
    """(arch, with archive) pairs, cheapest first: the label-free baselines, then the regime's first
    MAX_TRAINED trained architectures less AUTO_EXCLUDED, each without and (when there is an archive) with it."""
    free = label_free()
    r = regime_for(n_labels)
    archs = [a for a in regime_archs(r.name) if a not in free][:MAX_TRAINED] if r is not None else []
    archs = [a for a in archs if a not in AUTO_EXCLUDED]
    out = [(a, False) for a in free]
    for a in archs:
        out.append((a, False))
        if has_archive:
            out.append((a, True))
    return out


def check_logit(arch: str) -> None:
    """ConfigError unless `arch` is a logit model whose score is sigmoid(logit) in (0, 1): the
    architectures whose score is a confidence (self-training's pseudo-labels need one)."""
    spec = arch_spec(arch)
    if spec.loss_family != "logit" or spec.score_range != (0.0, 1.0):
        raise ConfigError(f"self-training needs a logit model (sigmoid = confidence); {arch} is not one")


def _load_plugin(name: str) -> bool:
    """CROPRAY_MODEL_PLUGINS = "name=module:function,...": import module and call function() (which
    registers `name`) the first time `name` is looked up and missing. Only names listed there are
    tried, so a typo still fails with the list of valid names."""
    for entry in filter(None, os.environ.get(PLUGINS_ENV, "").split(",")):
        key, _, target = entry.strip().partition("=")
        if key != name:
            continue
        module, _, func = target.partition(":")
        try:
            getattr(importlib.import_module(module), func)()
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"{PLUGINS_ENV}: cannot load {entry!r}: {e}") from None
        return name in _SPECS
    return False
