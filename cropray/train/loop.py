"""`Trainer`: trains one model one epoch at a time, with early stopping on a validation split.

One epoch per call lets cross-validation advance k folds in lockstep (and report a CV metric per epoch
to an early-stopping scheduler such as ASHA); `fit` simply calls it until done. Each trainer keeps its
own torch RNG state, so a fold trained in lockstep with others gives the same model as trained alone.
"""

from __future__ import annotations

import copy
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from cropray.models import build_model, hparam_names
from cropray.train.augment import SpectrogramAugment
from cropray.train.config import TrainConfig
from cropray.train.losses import make_loss

SCORE_BATCH = 256  # crops per forward when scoring (no grad)


@dataclass
class EpochStats:
    epoch: int  # 1-based
    train_loss: float
    val_loss: float | None
    val_auc: float | None
    improved: bool
    seconds: float


def pick_device(name: str) -> torch.device:
    """auto -> CUDA when present, else CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def model_hparams(cfg: TrainConfig) -> dict:
    """build_model kwargs for a resolved config: model_kwargs plus dropout / embedding_dim when the
    architecture has them (a CNN has no embedding_dim: it is ignored, so one sweep space fits all)."""
    names = hparam_names(cfg.arch)
    hp = dict(cfg.model_kwargs)
    for key in ("dropout", "embedding_dim"):
        if getattr(cfg, key) is not None and key in names:
            hp[key] = getattr(cfg, key)
    return hp


class Trainer:
    """Train `build_model(cfg.arch)` on (x, y); validate on (x_val, y_val) after each epoch.

    x: (N, 1, H, W) float32 raw power (numpy or torch, kept on CPU; batches move to the device),
    y: (N,) in {0, 1}. Without a validation set every epoch counts as an improvement (fixed epochs).

    The architecture's own training interface (CropModel: `loss_inputs`, `score_from`, `finalize`,
    `score_variants`) decides what the loss consumes and what is set from labelled data (the Siamese
    gallery), so nothing here depends on which architecture it is.
    """

    def __init__(self, cfg: TrainConfig, x, y, x_val=None, y_val=None, *, seed: int | None = None, extra=None):
        self.cfg = cfg
        self.seed = cfg.seed if seed is None else seed
        self.device = pick_device(cfg.device)
        if self.device.type == "cuda":  # cuBLAS needs this set before its first use to be deterministic
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.backends.cudnn.benchmark = False
        saved = torch.random.get_rng_state()
        torch.manual_seed(self.seed)  # weight init comes from the seed, not from earlier draws
        self.net = build_model(cfg.arch, **model_hparams(cfg)).to(self.device)  # gets the gradients
        self._rng = torch.random.get_rng_state()  # this trainer's dropout RNG, swapped in per epoch
        torch.random.set_rng_state(saved)
        self.trainable = self.net.trainable and cfg.epochs > 0
        # Fast path: the preprocessing is parameter-free and deterministic, so normalise every crop once
        # and feed the model's normalised-crop interface (`loss_inputs(z)`, `score(z)`) directly; the
        # model itself is never changed (its preprocess stays, so `self.model` always takes raw crops).
        pre = self.net.preprocess
        stateless = not list(pre.parameters()) and not list(pre.buffers())
        self._pre = pre if (cfg.pre_normalise and stateless and self.trainable) else None
        self.steps = 0
        self.x = self._prepare(x)  # (N, 1, H, W) on CPU: raw, or normalised on the fast path
        self.y = torch.as_tensor(np.asarray(y).astype(np.int64))  # (N,)
        # An anchored model starts as the de-Doppler score calibrated on this training split's labels
        # (cropray.models.track_prior); set before the EMA copy so both start there.
        self.prior_calibration = self._calibrate_prior() if self.trainable else None
        # `model` is what is validated, scored and kept: an exponential moving average of the trained
        # weights (and BN statistics) when cfg.ema > 0 -- smoother than the raw weights on small sets.
        self.model = copy.deepcopy(self.net) if (cfg.ema > 0 and self.trainable) else self.net
        self._ema_pairs = []
        if self.model is not self.net:
            mine = dict(self.model.named_parameters()) | dict(self.model.named_buffers())
            self._ema_pairs = [(mine[k], v) for k, v in
                               list(self.net.named_parameters()) + list(self.net.named_buffers())
                               if not k.startswith(self.net.finalized_state)]  # set by finalize, not learned
        # training-only archive crops (cropray.train.archive_data.ExtraCrops): held once for every fold
        self.extra = extra
        self.held_extra = None if extra is None else extra.held(
            self._prepare, None if self._pre is None else repr(self._pre.describe()))
        self.has_val = x_val is not None and len(x_val) > 0
        if self.has_val:
            self.x_val = self._prepare(x_val)
            self.y_val = np.asarray(y_val).astype(np.int64)
        self.gen = torch.Generator().manual_seed(self.seed)  # batch order, augmentation draws
        n_pos = int(self.y.sum())
        pos_weight = None
        if cfg.balance == "pos_weight" and 0 < n_pos < len(self.y):
            pos_weight = (len(self.y) - n_pos) / n_pos  # negatives per positive
        self.loss_fn = make_loss(cfg, pos_weight, pu_prior=0.0 if extra is None else extra.pu_prior)
        domain = "raw" if self._pre is None else "normalised"
        self.augment = SpectrogramAugment(cfg, domain) if cfg.augment else None
        self.opt = self.sched = None
        if self.trainable:
            self.opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            self.sched = torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=max(1, cfg.epochs))
        self.epoch = 0
        self.best_epoch = 0
        self.best_key = (-np.inf, -np.inf)  # (val AUC, -val loss), compared lexicographically with slack
        self.best_state = copy.deepcopy(self.model.state_dict())
        self.history: list[EpochStats] = []
        self.stopped = not self.trainable

    @torch.no_grad()
    def _calibrate_prior(self) -> dict | None:
        """Fit the track prior's scale/offset on the training split (the labels, never the archive crops
        or the validation split); None for a model without one."""
        if not getattr(self.net, "calibrates_prior", False):
            return None
        self.net.eval()
        stat = torch.cat([self.net.track.statistic(self._normalised(self.net, self.x[i:i + SCORE_BATCH]
                                                                    .to(self.device))).cpu()
                          for i in range(0, len(self.x), SCORE_BATCH)]).numpy()  # (N,)
        return self.net.calibrate_prior(stat, self.y.numpy(), balanced=self.cfg.balance != "none")

    @torch.no_grad()
    def _prepare(self, x) -> torch.Tensor:
        """Raw crops -> the crops this trainer holds: normalised on the fast path, else raw."""
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        if self._pre is None:
            return x
        return torch.cat([self._pre(x[i:i + SCORE_BATCH].to(self.device)).cpu()
                          for i in range(0, len(x), SCORE_BATCH)])

    def _normalised(self, m, xb: torch.Tensor) -> torch.Tensor:
        """Held crops (on the device) -> normalised crops for model m's interface."""
        return xb if self._pre is not None else m.preprocess(xb)

    @property
    def done(self) -> bool:
        return self.stopped or self.epoch >= self.cfg.epochs

    def _order(self) -> torch.Tensor:
        """Indices for one epoch: >= cfg.epoch_crops draws, so a 20-crop set still gets several steps
        (each repeat is a fresh augmented view)."""
        n = len(self.y)
        draws = max(n, self.cfg.epoch_crops, 0 if self.extra is None else self.extra.real_draws(n))
        if self.extra is not None:
            return self.extra.mix(self._order_real(n, draws), n, self.gen)
        return self._order_real(n, draws)

    def _order_real(self, n: int, draws: int) -> torch.Tensor:
        if self.cfg.balance == "sampler":
            # Balanced sampling with replacement: each class drawn with probability 1/2 per slot.
            cls_n = torch.bincount(self.y, minlength=2).clamp_min(1).double()
            w = 1.0 / cls_n[self.y]
            return torch.multinomial(w, draws, replacement=True, generator=self.gen)
        reps = -(-draws // n)  # whole shuffled passes, cut to length
        return torch.cat([torch.randperm(n, generator=self.gen) for _ in range(reps)])[:draws]

    def _forward_train(self, xb: torch.Tensor) -> torch.Tensor:
        return self.net.loss_inputs(self._normalised(self.net, xb))  # e.g. (B,) logits or (B, D) embeddings

    def run_epoch(self) -> EpochStats:
        """Train one epoch, validate, keep the best weights; sets `stopped` when patience runs out."""
        t0 = time.perf_counter()
        self.epoch += 1
        saved = torch.random.get_rng_state()
        torch.random.set_rng_state(self._rng)
        prev_det, prev_warn = torch.are_deterministic_algorithms_enabled(), \
            torch.is_deterministic_algorithms_warn_only_enabled()
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            train_loss = self._train_pass()
            val_loss, val_auc = self._validate() if self.has_val else (None, None)
        finally:
            torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
            self._rng = torch.random.get_rng_state()
            torch.random.set_rng_state(saved)
        improved = self._track(val_auc, val_loss)
        st = EpochStats(self.epoch, train_loss, val_loss, val_auc, improved, time.perf_counter() - t0)
        self.history.append(st)
        return st

    def _train_pass(self) -> float:
        self.net.train()
        order = self._order()
        bs = self.cfg.batch_size
        total, count = 0.0, 0
        for i in range(0, len(order), bs):
            idx = order[i:i + bs]
            if len(idx) < 2:  # BatchNorm cannot normalise one crop; it rejoins next epoch's shuffle
                continue
            xb, yb = (self.x[idx], self.y[idx]) if self.extra is None else \
                self.extra.gather(self.x, self.y, self.held_extra, idx)  # (B', 1, H, W) CPU, (B',) codes
            if self.augment is not None:
                xb = self.augment(xb, self.gen)
            xb, yb = xb.to(self.device, non_blocking=True), yb.to(self.device)
            loss = self.loss_fn(self._forward_train(xb), yb)
            penalty = self.net.anchor_penalty() if hasattr(self.net, "anchor_penalty") else None
            if penalty is not None:  # pulls the learned correction toward the de-Doppler prior
                loss = loss + penalty
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            self._ema_update()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        self.sched.step()
        return total / max(1, count)

    @torch.no_grad()
    def _ema_update(self) -> None:
        self.steps += 1
        if not self._ema_pairs:
            return
        d = min(self.cfg.ema, (1 + self.steps) / (10 + self.steps))  # short memory while weights move fast
        for e, p in self._ema_pairs:
            if e.dtype.is_floating_point:
                e.mul_(d).add_(p.detach(), alpha=1 - d)
            else:
                e.copy_(p)  # BN's num_batches_tracked

    @torch.no_grad()
    def _validate(self) -> tuple[float, float | None]:
        self.model.eval()
        yv = torch.as_tensor(self.y_val, device=self.device)
        self.model.finalize([(self.x, self.y)], self._batched)  # training crops only (Siamese gallery)
        out = self._batched(self.model.loss_inputs, self.x_val)  # (V,) logits or (V, D) embeddings
        loss = float(self.loss_fn(out, yv))
        s = self.model.score_from(out).cpu().numpy()
        if not np.isfinite(s).all():
            raise FloatingPointError(
                f"training diverged: non-finite validation scores after epoch {self.epoch} "
                f"({self.cfg.arch}, loss {self.cfg.loss}, lr {self.cfg.lr:g}); lower the learning rate")
        if len(np.unique(self.y_val)) < 2:  # a class too rare to spare for validation: loss only
            return loss, None
        return loss, float(roc_auc_score(self.y_val, s))

    def _track(self, val_auc, val_loss) -> bool:
        if val_loss is None:  # no validation: the last epoch is the model
            key = (float(self.epoch), 0.0)
            improved = True
        elif self.epoch <= self.cfg.min_epochs:  # warm-up window: always keep the latest weights
            auc = -1.0 if val_auc is None else val_auc
            key, improved = (auc, -val_loss), True
        else:
            auc = -1.0 if val_auc is None else val_auc
            key = (auc, -val_loss)
            best_auc, best_nl = self.best_key
            # AUC first; within 1e-4 of the best AUC (ties are common on small validation sets),
            # a lower validation loss counts as better.
            improved = auc > best_auc + 1e-4 or (auc >= best_auc - 1e-4 and -val_loss > best_nl)
        if improved:
            self.best_key, self.best_epoch = key, self.epoch
            self.best_state = copy.deepcopy(self.model.state_dict())
        elif self.epoch - self.best_epoch >= self.cfg.patience:
            self.stopped = True
        return improved

    def _batched(self, fn, x: torch.Tensor) -> torch.Tensor:
        """fn (normalised crops -> tensor) over held crops x, SCORE_BATCH at a time on the device."""
        return torch.cat([fn(self._normalised(self.model, x[i:i + SCORE_BATCH].to(self.device)))
                          for i in range(0, len(x), SCORE_BATCH)])

    def finalize(self) -> None:
        """The model's finalize step on all of this trainer's labelled crops (train + validation split),
        e.g. the Siamese gallery computed once with the current encoder; nothing for most models."""
        parts = [(self.x, self.y)]
        if self.has_val:
            parts.append((self.x_val, torch.as_tensor(self.y_val)))
        self.model.finalize(parts, self._batched)

    def use_best(self) -> None:
        """Load the best epoch's weights, run the finalize step on every labelled crop; eval mode."""
        self.model.load_state_dict(self.best_state)
        self.finalize()
        self.model.eval()

    @torch.no_grad()
    def predict(self, x) -> np.ndarray:
        """Scores (N,) float32 of raw crops x by the current model (eval mode): what a bundle would output."""
        self.model.eval()
        return self._batched(self.model.score, self._prepare(x)).float().cpu().numpy()

    @torch.no_grad()
    def predict_variants(self, x) -> dict[str, np.ndarray]:
        """{rule: (N,) scores} of the model's alternative scoring rules ({} for most models)."""
        if not self.model.variants_metric:
            return {}
        self.model.eval()
        out = self.model.score_variants(self._prepare(x), self._batched)
        return {k: v.float().cpu().numpy() for k, v in out.items()}
