"""`shallow_cnn`: the seed design's SignalClassifier, for the 100-499 label regime."""

from __future__ import annotations

import torch
from torch import nn

from cropray.models._base import LogitModel, check_channels, check_float, conv_bn_relu
from cropray.models._registry import register_model
from cropray.models.track_prior import ANCHOR, ANCHOR_L2, CALIBRATE, TRACK_PRIOR, TrackPriorMixin


@register_model("shallow_cnn")
class ShallowCNN(TrackPriorMixin, LogitModel):
    """3 x (conv3x3 -> BN -> ReLU), max-pool after the first two, GAP, dropout, linear -> 1 logit.

    ~93K parameters with the default channels (32, 64, 128). Global average pooling keeps the head
    tiny (129 weights), which is what lets it train on a few hundred labels without memorising.
    `track_prior` adds the de-Doppler statistic as a learned logit term; `anchor`, `anchor_l2` and
    `calibrate` make the model start as that term and stay near it (track_prior.py).
    """

    def __init__(self, *, channels=(32, 64, 128), dropout: float = 0.5, track_prior: bool = TRACK_PRIOR,
                 flatten: bool = True, flatten_window: int = 15, row_center: bool | None = None,
                 compress: str = "asinh", anchor: bool = ANCHOR, anchor_l2: float = ANCHOR_L2,
                 calibrate: bool = CALIBRATE):
        super().__init__()
        ch = check_channels("channels", channels, 3)
        prior, row_center, anchoring = self._init_track(track_prior, row_center, anchor, anchor_l2, calibrate)
        self._init_common({"channels": ch, "dropout": check_float("dropout", dropout, 0.0, 1.0, hi_open=True),
                           "track_prior": prior, **anchoring, "flatten": flatten, "flatten_window": flatten_window,
                           "row_center": row_center, "compress": compress})
        self.features = nn.Sequential(
            conv_bn_relu(1, ch[0]), nn.MaxPool2d(2),      # (B, c0, H/2, W/2)
            conv_bn_relu(ch[0], ch[1]), nn.MaxPool2d(2),  # (B, c1, H/4, W/4)
            conv_bn_relu(ch[1], ch[2]),                   # (B, c2, H/4, W/4)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(self._hparams["dropout"])
        self.head = nn.Linear(ch[2], 1)
        self._anchor_head()  # zero head when anchored: the model starts as the calibrated prior

    def logits_normalised(self, z: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) normalised crops -> (B,) raw logit (for BCE / focal loss)."""
        h = self.pool(self.features(z)).flatten(1)  # (B, c2)
        out = self.head(self.dropout(h)).squeeze(1)  # (B,)
        return self._plus_track(out, z)
