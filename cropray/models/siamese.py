"""`siamese`: an embedding encoder plus a gallery head, for the 25-99 label regime.

The encoder maps a crop to an L2-normalised embedding; a crop's score comes from its cosine
similarities to a gallery of labelled embeddings of BOTH classes, stored as buffers (so they are in the
state dict and the bundle's safetensors). The gallery is encoded once, by `set_gallery`, never per
query, and scoring a batch is one matmul `S = E @ G.T` (B, G) followed by per-class reductions.

Rules (hparam `rule`; `gallery_scores` returns all of them from the same embeddings):
- "seed": the seed design's rule, max over the positive gallery of 1/(1+d), d = sqrt(max(0, 2 - 2s)),
  the Euclidean distance between unit vectors. Ignores the negatives entirely.
- "knn" (default): 0.5 + 0.25 * (mean of the k highest similarities to positives - same to negatives).
  Uses both classes, is continuous (no ties at 0/1 that would flatten the ROC curve) and lies in [0, 1].
- "proto": 0.5 + 0.25 * (cosine to the positive class mean - cosine to the negative class mean).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cropray.errors import ConfigError
from cropray.models._base import CropModel, check_channels, check_float, check_int, conv_bn_relu
from cropray.models._registry import register_model

RULES = ("knn", "seed", "proto")


@register_model("siamese")
class Siamese(CropModel):
    """Encoder 3 x (conv3x3-BN-ReLU-maxpool), GAP, dropout, linear -> L2-normalised embedding (D).

    ~122K parameters with channels (32, 64, 160) and D = 64. The widest layer runs at 16x16, so the
    extra width over the shallow CNN is cheap; the seed's 100-200K budget is met without more depth.
    Training interface: the loss consumes embeddings; `finalize` builds the gallery from labelled crops.
    """

    finalized_state = ("gallery_",)  # set by finalize / set_gallery, never averaged or learned
    variants_metric = "gallery_rule_auc"  # CV reports each rule's out-of-fold ROC-AUC

    def __init__(self, *, channels=(32, 64, 160), embedding_dim: int = 64, dropout: float = 0.2,
                 rule: str = "knn", k: int = 5, flatten: bool = True, flatten_window: int = 15,
                 row_center: bool = False, compress: str = "asinh"):
        super().__init__()
        if rule not in RULES:
            raise ConfigError(f"rule={rule!r} is not one of {', '.join(RULES)}")
        ch = check_channels("channels", channels, 3)
        dim = check_int("embedding_dim", embedding_dim, 2, 1024)
        self._init_common({"channels": ch, "embedding_dim": dim,
                           "dropout": check_float("dropout", dropout, 0.0, 1.0, hi_open=True),
                           "rule": rule, "k": check_int("k", k, 1, 1000), "flatten": flatten,
                           "flatten_window": flatten_window, "row_center": row_center,
                           "compress": compress})
        self.encoder = nn.Sequential(
            conv_bn_relu(1, ch[0]), nn.MaxPool2d(2),      # (B, c0, H/2, W/2)
            conv_bn_relu(ch[0], ch[1]), nn.MaxPool2d(2),  # (B, c1, H/4, W/4)
            conv_bn_relu(ch[1], ch[2]), nn.MaxPool2d(2),  # (B, c2, H/8, W/8)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(self._hparams["dropout"])
        self.proj = nn.Linear(ch[2], dim)
        # Gallery, positives first: (G, D) unit embeddings and (G,) int64 labels. Empty until set.
        self.register_buffer("gallery_emb", torch.zeros(0, dim))
        self.register_buffer("gallery_labels", torch.zeros(0, dtype=torch.int64))
        self._n_pos = 0  # Python int (not data-dependent in forward, so torch.compile stays static)

    def embed_normalised(self, z: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) normalised crops -> (B, D) L2-normalised embedding."""
        h = self.pool(self.encoder(z)).flatten(1)  # (B, c2)
        return F.normalize(self.proj(self.dropout(h)), dim=1)  # (B, D)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) raw power -> (B, D) L2-normalised embedding."""
        return self.embed_normalised(self.preprocess(x))

    @torch.no_grad()
    def set_gallery(self, emb: torch.Tensor, labels) -> None:
        """Store gallery embeddings (G, D) and labels (G,) in {0, 1}; both classes are required.

        Call with `embed()` outputs of the labelled crops (model in eval mode) before saving a bundle.
        """
        emb = torch.as_tensor(emb, dtype=torch.float32)
        labels = torch.as_tensor(labels).reshape(-1).to(torch.int64)
        dim = self._hparams["embedding_dim"]
        if emb.ndim != 2 or emb.shape[1] != dim or emb.shape[0] != labels.shape[0]:
            raise ConfigError(f"gallery must be (G, {dim}) embeddings with G labels; got "
                              f"{tuple(emb.shape)} and {tuple(labels.shape)}")
        if not bool(((labels == 0) | (labels == 1)).all()):
            raise ConfigError("gallery labels must be 0 or 1")
        n_pos = int(labels.sum())
        if n_pos == 0 or n_pos == labels.numel():
            raise ConfigError(f"gallery needs both classes; got {n_pos} positive and "
                              f"{labels.numel() - n_pos} negative embeddings")
        order = torch.argsort(labels, descending=True, stable=True)  # positives first
        dev = self.proj.weight.device
        self.gallery_emb = F.normalize(emb[order], dim=1).to(dev).contiguous()
        self.gallery_labels = labels[order].to(dev).contiguous()
        self._n_pos = n_pos

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The gallery size is state, not an hparam: resize the empty buffers to what is being loaded.
        for name in ("gallery_emb", "gallery_labels"):
            t = state_dict.get(prefix + name)
            if t is not None and t.shape != getattr(self, name).shape:
                setattr(self, name, torch.empty(t.shape, dtype=getattr(self, name).dtype,
                                                device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if self.gallery_labels.numel():
            lab = self.gallery_labels
            if bool((lab[:-1] < lab[1:]).any()):  # not positives-first: restore the invariant
                self.set_gallery(self.gallery_emb.clone(), lab.clone())
            self._n_pos = int(self.gallery_labels.sum())

    def _similarities(self, emb: torch.Tensor) -> torch.Tensor:
        if self._n_pos == 0:
            raise ConfigError("siamese model has no gallery; call set_gallery(embed(x), y) first")
        return emb @ self.gallery_emb.to(emb.dtype).T  # (B, G): the only gallery computation

    def _rule(self, s: torch.Tensor, rule: str) -> torch.Tensor:
        p, k = self._n_pos, self._hparams["k"]
        s_pos, s_neg = s[:, :p], s[:, p:]  # (B, P), (B, N)
        if rule == "seed":
            d = torch.sqrt(torch.clamp(2.0 - 2.0 * s_pos.amax(dim=1), min=0.0))  # nearest positive
            return 1.0 / (1.0 + d)
        if rule == "knn":
            top_pos = s_pos.topk(min(k, s_pos.shape[1]), dim=1).values.mean(dim=1)  # (B,)
            top_neg = s_neg.topk(min(k, s_neg.shape[1]), dim=1).values.mean(dim=1)
            return torch.clamp(0.5 + 0.25 * (top_pos - top_neg), 0.0, 1.0)
        # proto: cosine to a class mean m = mean(g) is mean(s) / |m| (no need to re-normalise E @ m).
        g = self.gallery_emb.to(s.dtype)
        c_pos = s_pos.mean(dim=1) / g[:p].mean(dim=0).norm().clamp_min(1e-12)
        c_neg = s_neg.mean(dim=1) / g[p:].mean(dim=0).norm().clamp_min(1e-12)
        return torch.clamp(0.5 + 0.25 * (c_pos - c_neg), 0.0, 1.0)

    def gallery_scores(self, emb: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, D) embeddings -> {rule: (B,) score} for every rule, from one similarity matrix."""
        s = self._similarities(emb)
        return {r: self._rule(s, r) for r in RULES}

    def score(self, z: torch.Tensor) -> torch.Tensor:
        return self.score_from(self.embed_normalised(z))

    # training interface (CropModel): metric loss on embeddings, gallery as the finalize step
    def loss_inputs(self, z: torch.Tensor) -> torch.Tensor:
        return self.embed_normalised(z)  # (B, D)

    def score_from(self, emb: torch.Tensor) -> torch.Tensor:
        return self._rule(self._similarities(emb), self._hparams["rule"]).float()

    @torch.no_grad()
    def finalize(self, parts, batched) -> None:
        """Gallery = embeddings of every labelled crop in `parts`, computed once with this encoder."""
        x = parts[0][0] if len(parts) == 1 else torch.cat([p[0] for p in parts])
        y = parts[0][1] if len(parts) == 1 else torch.cat([torch.as_tensor(p[1]) for p in parts])
        self.eval()
        self.set_gallery(batched(self.embed_normalised, x), y)

    @torch.no_grad()
    def score_variants(self, z, batched) -> dict[str, torch.Tensor]:
        return self.gallery_scores(batched(self.embed_normalised, z))

    def bundle_problem(self) -> str | None:
        if self._n_pos == 0:
            return "siamese model has no gallery; call model.set_gallery(model.embed(x), y) before saving"
        return None

    def state_summary(self) -> dict:
        g = int(self.gallery_labels.numel())
        return {"gallery_size": g, "gallery_positives": self._n_pos, "gallery_negatives": g - self._n_pos}
