"""Proof that the registry is the single source of per-architecture policy: a toy architecture,
registered here and nowhere else, goes through train -> bundle -> eval -> score (Ray) -> a 2-trial tune.

The toy is a linear model on 8x8-pooled normalised pixels (65 parameters). Its spec declares the 'few'
regime, so registering it is all it takes to appear in that sweep space, the CLI's --arch choices,
TrainConfig's defaults and the bundle's manifest. Ray workers (score actors, Tune trials) are other
processes where a class registered only in this driver does not exist: CROPRAY_MODEL_PLUGINS names
`register_toy` for them (set at import, i.e. during collection, before the session's Ray starts;
workers import this file as tests.models.test_toy_arch from the repository root, Ray's working dir).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cropray.models import ArchSpec, LogitModel, list_models, register_model, unregister_model
from cropray.models.policy import PLUGINS_ENV

TOY = ArchSpec(
    "toy_linear", "linear model on 8x8-pooled normalised pixels (test only)", "logit",
    train_defaults=dict(epochs=1, batch_size=32, lr=1e-2, loss="bce", balance="pos_weight", patience=1),
    score_meaning="sigmoid probability in [0, 1] (toy)", param_budget=(65, 65), search={"few": {}})
_ENTRY = f"{TOY.name}=tests.models.test_toy_arch:register_toy"
if _ENTRY not in os.environ.get(PLUGINS_ENV, ""):
    os.environ[PLUGINS_ENV] = ",".join(filter(None, [os.environ.get(PLUGINS_ENV), _ENTRY]))


class ToyLinear(LogitModel):
    """(B, 1, 64, 64) -> RobustNorm -> 8x8 average pool (B, 64) -> linear -> (B,) logit."""

    def __init__(self, *, pool: int = 8, flatten: bool = True, flatten_window: int = 15,
                 row_center: bool = True, compress: str = "asinh"):
        super().__init__()
        self._init_common({"pool": int(pool), "flatten": flatten, "flatten_window": flatten_window,
                           "row_center": row_center, "compress": compress})
        self.head = nn.Linear(pool * pool, 1)

    def logits_normalised(self, z: torch.Tensor) -> torch.Tensor:
        p = self._hparams["pool"]
        return self.head(F.adaptive_avg_pool2d(z, p).flatten(1)).squeeze(1)  # (B,)


def register_toy() -> None:
    """Register the toy (this driver, or a Ray worker on its first lookup of the name)."""
    register_model(TOY)(ToyLinear)


@pytest.fixture
def toy():
    register_toy()
    try:
        yield TOY.name
    finally:
        unregister_model(TOY.name)
    assert TOY.name not in list_models()  # other tests iterate the registry


@pytest.fixture(scope="module")
def labels(tmp_path_factory):
    from cropray.synth import synth_archive

    out = tmp_path_factory.mktemp("toy_labels")
    synth_archive(out, 80, labeled=True, seed=21, snr_range=(30.0, 100.0))  # 80 labels: the 'few' regime
    return out


def test_registration_reaches_every_consumer(toy):
    from cropray.bench.config import BenchConfig
    from cropray.train.config import TrainConfig, arch_choices
    from cropray.tune.spaces import SPACES, default_point

    assert toy in list_models() and toy in arch_choices()
    cfg = TrainConfig(arch=toy).resolve(toy)
    assert (cfg.epochs, cfg.lr, cfg.loss) == (1, 1e-2, "bce")  # the spec's train_defaults
    assert toy in SPACES["few"]["arch"].options and toy not in SPACES["mid"]["arch"].options
    assert default_point(SPACES["few"])["arch"] == "siamese"  # the regime table's default is unchanged
    assert BenchConfig(archs=(toy,)).archs == (toy,)
    with pytest.raises(Exception, match="registered twice"):
        register_toy()


def test_toy_train_bundle_eval_score_tune(toy, labels, tmp_path, ray_local):
    from cropray.archive import read_labeled
    from cropray.bundle import load_bundle
    from cropray.evaluate.job import evaluate_bundle
    from cropray.scoring import ScoreConfig, score_archive
    from cropray.train import TrainConfig, TrainJob, train_and_bundle
    from cropray.tune import TuneConfig, run_sweep
    from cropray.tune.search import RandomSearch

    # train -> bundle: 2-fold CV, 1 epoch (the spec's default), refit, bundle written and reloaded
    t = train_and_bundle(TrainJob(labels, tmp_path / "model", TrainConfig(arch=toy), folds=2, progress=False), log=None)
    assert t["arch"] == toy and t["k"] == 2 and t["final_epochs"] == 1 and t["model_id"].startswith(toy)
    b = load_bundle(t["bundle"])
    assert type(b.model).__name__ == "ToyLinear" and b.manifest.get("score") == TOY.score_meaning

    # eval: in process, every labelled crop
    ev = evaluate_bundle(t["bundle"], labels, n_boot=50)
    assert ev["arch"] == toy and ev["n_labels"] == 80

    # score: Ray Data actors load the bundle in other processes (the plugin entry registers the toy there)
    s = score_archive(ScoreConfig(bundle=t["bundle"], input=str(labels), output=str(tmp_path / "scores"),
                                  actors=(1, 1), precision="fp32"))
    assert s["rows_scored"] == 80 and s["rows_quarantined"] == 0
    got = pd.read_parquet(tmp_path / "scores").set_index("crop_id")["score"]
    ls = read_labeled(labels)
    with torch.no_grad():
        want = b.model(torch.from_numpy(ls.x)).numpy()  # the bundle's eager model in this process
    np.testing.assert_allclose(got.loc[list(ls.crop_id)].to_numpy(), want, atol=1e-5)

    # tune: 2 random trials of the 'few' space, seeded so both draw the toy (found, not assumed)
    def draws(sd: int) -> list[str]:
        r = RandomSearch("few", seed=sd)  # the sweep's searcher: include_default off, no points
        return [r.suggest(str(i))["arch"] for i in range(2)]

    seed = next(sd for sd in range(100) if draws(sd) == [toy, toy])
    tcfg = TuneConfig(regime="few", samples=2, epochs=1, folds=2, search="random", seed=seed,
                      include_default=False, max_concurrent=2)
    sw = run_sweep(labels, tmp_path / "sweep", tcfg, log=None)
    assert sw["trials"]["failed"] == 0 and sw["trials"]["total"] == 2
    assert sw["best"]["params"]["arch"] == toy
    # the winner ships only on a proven paired gain over physics (else dedoppler), and the summary says which
    g = sw["bundle"]["gain_vs_physics"]
    shipped = toy if g["proven"] else "dedoppler"
    assert load_bundle(tmp_path / "sweep" / "bundle").arch == sw["bundle"]["arch"] == shipped
    assert (sw["bundle"]["physics"] is None) == g["proven"]
