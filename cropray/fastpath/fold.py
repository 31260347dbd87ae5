"""Fold eval-mode BatchNorm into the convolution (or linear) that feeds it.

BN after a conv is an affine map per output channel, so in eval mode it is absorbed into the conv's
weight and bias: w' = w * g / sqrt(v + eps), b' = (b - m) * g / sqrt(v + eps) + beta. Our models are
built from `nn.Sequential` blocks (conv -> BN -> ReLU), so module surgery on consecutive Sequential
children finds every pair without tracing the model (tracing would have to cope with preprocessing and
the Siamese gallery branch). Exact up to float rounding (<= ~1e-6 relative).
"""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BNS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def fold_batchnorm(model: nn.Module) -> tuple[nn.Module, int, int]:
    """Return (folded deep copy of model, pairs folded, BatchNorm layers left unfolded).

    A BN is folded only when it directly follows a conv/linear in the same Sequential and is in eval
    mode with running stats; the BN slot becomes nn.Identity so indices (and state_dict keys of the
    other layers) stay put.
    """
    model = copy.deepcopy(model).eval()
    folded = 0
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for prev, cur in zip(names, names[1:]):
            a, b = seq._modules[prev], seq._modules[cur]
            if not isinstance(b, _BNS) or b.running_mean is None or b.training:
                continue
            if isinstance(a, _CONVS) and a.weight.shape[0] == b.num_features:
                seq._modules[prev] = fuse_conv_bn_eval(a, b)
            elif isinstance(a, nn.Linear) and a.out_features == b.num_features:
                seq._modules[prev] = fuse_linear_bn_eval(a, b)
            else:
                continue
            seq._modules[cur] = nn.Identity()
            folded += 1
    left = sum(isinstance(m, _BNS) for m in model.modules())
    return model, folded, left
