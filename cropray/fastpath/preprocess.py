"""`RobustNorm` (cropray.models.preprocess) as numpy in front of the network on CPU: the same medians
(np.partition selects the element torch.median returns), ~20x faster than torch.median + torch.asinh,
and ONNX has no Median operator. The numbers come from cropray.models.physics_np (torch-free, pinned to
the model's module by its tests); `split_preprocess` checks the copy on real crops before using it.
Non-finite inputs (quarantined by scoring before a model sees them) fall back to the torch module.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from cropray.models.physics_np import robust_norm_np, subsample_stride

log = logging.getLogger("cropray.fastpath")


def robust_norm_numpy(x: np.ndarray, *, flatten: bool, flatten_window: int, row_center: bool,
                      compress: str) -> np.ndarray:
    """(B,1,H,W) float32 finite raw power -> (B,1,H,W) float32, = RobustNorm.forward (see module doc)."""
    return robust_norm_np(x, flatten=flatten, flatten_window=flatten_window, row_center=row_center,
                          compress=compress, stride=subsample_stride(x.shape[2] * x.shape[3], x.shape[3]))


class NumpyRobustNorm(nn.Module):
    """Drop-in for a RobustNorm instance on CPU tensors (no autograd, not traceable: run it eagerly)."""

    def __init__(self, ref: nn.Module):
        super().__init__()
        self.ref = ref  # the original RobustNorm: the fallback for non-finite batches
        self.cfg = {"flatten": ref.flatten, "flatten_window": ref.flatten_window,
                    "row_center": ref.row_center, "compress": ref.compress}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xn = x.detach().cpu().numpy()  # zero-copy for CPU float32
        if xn.dtype != np.float32 or not np.isfinite(xn).all():
            return self.ref(x)
        return torch.from_numpy(robust_norm_numpy(xn, **self.cfg)).to(x.device)


def is_robust_norm(m: nn.Module) -> bool:
    """True for cropray's RobustNorm (checked by attributes, so a subclass or reload still counts)."""
    return type(m).__name__ == "RobustNorm" and all(
        hasattr(m, a) for a in ("flatten", "flatten_window", "row_center", "compress"))


def split_preprocess(model: nn.Module, example: torch.Tensor) -> tuple[NumpyRobustNorm | None, str]:
    """Move `model.preprocess` (a RobustNorm) out of `model` into a NumpyRobustNorm, in place.

    Checked on `example` first: if this copy ever disagrees with the model's own module (which
    may evolve), the model keeps its torch preprocessing and a warning is logged. Returns
    (fast preprocess or None, a description for describe()).
    """
    ref = getattr(model, "preprocess", None)
    if ref is None or not is_robust_norm(ref):
        return None, "torch (in model)"
    fast = NumpyRobustNorm(ref)
    with torch.no_grad():
        a, b = ref(example), fast(example)
    if a.shape != b.shape or not torch.allclose(a, b, rtol=1e-5, atol=1e-5):
        err = (a - b).abs().max().item() if a.shape == b.shape else f"shape {tuple(b.shape)}"
        log.warning("fastpath: numpy RobustNorm disagrees with the model's (max |d| %s); using torch", err)
        return None, f"torch (in model; numpy copy disagreed by {err})"
    model.preprocess = nn.Identity()
    return fast, "numpy (np.partition medians, np.arcsinh)"
