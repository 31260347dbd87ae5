"""A briefly trained model for benchmarks and fast-path tests.

Why not random weights: bf16/int8 error on an untrained net is 5-15x what a trained one shows (random
BN statistics and weights put activations far from where scores saturate), so accuracy of reduced
precision must be judged on a model that has learned something. A few hundred Adam steps on
synthetic labels is enough for that; it is not the product's training (that is `cropray.train`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cropray.evaluate import calibrate_threshold
from cropray.fastpath.preprocess import NumpyRobustNorm
from cropray.models import build_model
from cropray.synth import SynthConfig, generate

# Harder than the default SNR range so that scores spread around the threshold (more flips to catch).
BENCH_SNR = (3.0, 40.0)


@dataclass
class TrainedModel:
    model: nn.Module  # eval mode, cpu
    threshold: float  # Youden-J threshold on the training crops
    calibration_crops: np.ndarray  # (n, 1, H, W) float32: training crops, as a bundle would carry
    steps: int
    seconds: float


def synth_xy(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n,1,64,64) float32 raw-power crops and (n,) int64 labels."""
    b = generate(n, SynthConfig(snr_range=BENCH_SNR), seed=seed)
    return b.crops[:, None].astype(np.float32, copy=False), b.label.astype(np.int64)


def train_briefly(arch: str, *, seconds: float = 10.0, max_steps: int = 400, n_train: int = 2048,
                  batch: int = 32, seed: int = 0, n_calibration: int = 512) -> TrainedModel:
    """Train `arch` with Adam + BCE for at most `seconds` / `max_steps` (whichever first).

    Through the model's training interface (`loss_inputs` on normalised crops): a metric-family model
    (Siamese) is trained through a throw-away linear head on its embedding, then its finalize step (the
    gallery) runs on 64 labelled training crops. A label-free model has nothing to train.
    """
    torch.manual_seed(seed)
    x, y = synth_xy(n_train, seed)
    model = build_model(arch)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y).float()
    head = _embedding_head(model, xt[:2])
    steps, t0 = 0, time.perf_counter()
    if model.trainable:
        # Preprocessing has no parameters: run it once over the training crops and train the rest
        # (channels_last: ~2x faster training steps on CPU; fp32 so reduced precision is not favoured).
        with torch.no_grad():  # the fast path's numpy copy of RobustNorm: same values, ~10x faster
            zt = NumpyRobustNorm(model.preprocess)(xt)  # (n, 1, H, W)
        model.to(memory_format=torch.channels_last).train()
        params = list(model.parameters()) + (list(head.parameters()) if head is not None else [])
        opt = torch.optim.Adam(params, lr=1e-3)
        g = torch.Generator().manual_seed(seed)
        while steps < max_steps and time.perf_counter() - t0 < seconds:
            idx = torch.randint(0, n_train, (batch,), generator=g)
            out = model.loss_inputs(zt[idx])  # (B,) logits, or (B, D) embeddings
            logits = head(out).squeeze(1) if head is not None else out
            loss = F.binary_cross_entropy_with_logits(logits, yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
        _recalibrate_bn(model, zt[:1024])
        model.to(memory_format=torch.contiguous_format)  # hand back the model as training would
    model.eval()
    with torch.inference_mode():
        gal = torch.cat([torch.nonzero(yt == c).flatten()[:32] for c in (1, 0)])  # (64,) both classes
        model.finalize([(xt[gal], yt[gal].long())], lambda fn, xr: fn(model.preprocess(xr)))
        n_eval = min(n_train, 1024)  # threshold from crops the model trained on, as train would
        scores = torch.cat([model(xt[i:i + 256]) for i in range(0, n_eval, 256)]).numpy()
    threshold = calibrate_threshold(y[:n_eval], scores)
    return TrainedModel(model=model, threshold=float(threshold), calibration_crops=x[:n_calibration].copy(),
                        steps=steps, seconds=round(time.perf_counter() - t0, 2))


def _embedding_head(model: nn.Module, probe: torch.Tensor) -> nn.Linear | None:
    """A throw-away (D -> 1) linear head when the model's loss consumes (B, D) embeddings, else None."""
    if model.spec.loss_family != "metric":
        return None
    model.eval()
    with torch.no_grad():  # eval mode, no dropout: the probe draws no random numbers
        dim = model.loss_inputs(model.preprocess(probe)).shape[1]
    model.train()
    return nn.Linear(dim, 1)


def _recalibrate_bn(model: nn.Module, z: torch.Tensor) -> None:
    """Reset BN running stats to the exact average over `z` with the final weights.

    After a few dozen steps the momentum-averaged statistics still mix early weights, so eval-mode
    scores would be off (saturated); a real training run would not have that problem.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average over the passes below
    model.train()
    with torch.no_grad():
        for i in range(0, len(z), 128):
            model.loss_inputs(z[i:i + 128])
    for bn in bns:
        bn.momentum = 0.1
