"""A small synthetic archive and a quickly made shallow_cnn bundle for the suggest tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def make_bundle(out: Path, arch: str = "shallow_cnn") -> Path:
    """A real bundle: BN statistics from real crops, threshold at the median score."""
    import torch

    from cropray.bundle import save_bundle
    from cropray.models import build_model
    from cropray.synth import generate

    torch.manual_seed(0)
    m = build_model(arch)
    x = torch.from_numpy(generate(64, seed=3).crops[:, None])
    bns = [mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.momentum = None
    with torch.no_grad():
        if bns:
            m.train()
            m.logits(x)
        m.eval()
        thr = float(m(x).median())
    return save_bundle(m, out, threshold=thr, train_summary={"n_labels": 64, "input_shape": [64, 64]}, metrics={})


@pytest.fixture(scope="session")
def suggest_data(tmp_path_factory):
    """(archive dir, bundle dir, labelled file with 10 of the archive's crops)."""
    import pandas as pd

    from cropray.synth import synth_archive

    root = tmp_path_factory.mktemp("suggest")
    synth_archive(root / "archive", n=300, files=2, seed=11, labeled=False)
    bundle = make_bundle(root / "model")
    df = pd.read_parquet(root / "archive").iloc[:10]
    labels = pd.DataFrame({"crop_id": df.crop_id, "label": np.arange(10) % 2})
    labels.to_parquet(root / "labels.parquet")
    return root / "archive", Path(bundle), root / "labels.parquet"
