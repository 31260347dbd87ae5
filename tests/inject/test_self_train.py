"""Self-training: pseudo-labels only where every weak view is confident and agrees; logit models only."""

from __future__ import annotations

import numpy as np
import pytest

from cropray.errors import ConfigError
from cropray.synth import SynthConfig, generate
from cropray.train import TrainConfig
from cropray.train.self_train import SelfTrainConfig, pseudo_label, self_train, weak_probabilities


def test_pseudo_labels_need_every_view_confident():
    p = np.array([[0.99, 0.99, 0.01, 0.50, 0.97, 0.02],
                  [0.98, 0.90, 0.02, 0.99, 0.99, 0.03]])  # (views, pool)
    idx, lab = pseudo_label(p, tau=0.95, max_pseudo=10)
    assert dict(zip(idx.tolist(), lab.tolist())) == {0: 1, 4: 1, 2: 0, 5: 0}  # 1 and 3: a view disagrees
    idx, lab = pseudo_label(p, tau=0.95, max_pseudo=1)
    assert dict(zip(idx.tolist(), lab.tolist())) == {0: 1, 2: 0}  # the most confident of each class
    with pytest.raises(ConfigError, match="tau"):
        SelfTrainConfig(tau=0.4)


def test_self_training_round_trains_a_student_on_confident_archive_crops():
    lab = generate(40, SynthConfig(snr_range=(30.0, 100.0)), seed=1)
    pool = generate(120, SynthConfig(snr_range=(30.0, 100.0)), seed=2)
    cfg = TrainConfig(arch="shallow_cnn", epochs=2, epoch_crops=32, batch_size=16)
    res, info = self_train(cfg, lab.crops[:, None], lab.label, pool.crops[:, None],
                           SelfTrainConfig(tau=0.6, views=2, max_pseudo=30), per_epoch=32, progress=False)
    r = info["rounds"][0]
    assert r["pool"] == 120 and 0 < r["pseudo_signal"] + r["pseudo_not"] <= 60
    p = weak_probabilities(res.model, pool.crops[:8, None], cfg.resolve("shallow_cnn"), 2, 0)
    assert p.shape == (2, 8) and ((p >= 0) & (p <= 1)).all()
    import torch

    with torch.inference_mode():  # view 0 is the crop itself, and the score is already the probability
        np.testing.assert_allclose(p[0], res.model(torch.from_numpy(pool.crops[:8, None])).numpy(), rtol=1e-5)
    with pytest.raises(ConfigError, match="logit model"):
        self_train(TrainConfig(arch="siamese", epochs=1), lab.crops[:, None], lab.label, pool.crops[:, None],
                   SelfTrainConfig())
