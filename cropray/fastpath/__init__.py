"""Fast scoring path: `build_scorer(bundle_or_model, ...)` -> a callable scorer (np (B,1,H,W) -> np (B,)).

Until the fast execution paths land this is an eager fp32 scorer under `torch.inference_mode()`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn


class Scorer:
    """Callable: x np.ndarray (B,1,H,W) float32 (read-only is fine) -> np.ndarray (B,) float32 scores."""

    def __init__(self, model: nn.Module, *, threshold: float | None, model_id: str | None, threads: int | None):
        self.model = model.eval()
        self.threshold = threshold
        self.model_id = model_id
        self.threads = threads
        if threads is not None:
            torch.set_num_threads(int(threads))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if not x.flags.writeable:
            x = x.copy()  # torch.from_numpy warns on read-only arrays
        with torch.inference_mode():
            return self.model(torch.from_numpy(np.ascontiguousarray(x))).float().numpy()

    def describe(self) -> dict[str, Any]:
        return {"precision": "fp32", "compiled": False, "channels_last": False, "bn_folded": False,
                "device": "cpu", "threads": torch.get_num_threads(), "model_id": self.model_id}


def build_scorer(bundle, precision: str = "auto", compile="auto", device: str = "auto",
                 threads: int | None = None, *, threshold: float | None = None) -> Scorer:
    """Build a scorer from a `cropray.bundle.Bundle` or a plain nn.Module (threshold then optional)."""
    if isinstance(bundle, nn.Module):
        return Scorer(bundle, threshold=threshold, model_id=None, threads=threads)
    return Scorer(bundle.model, threshold=bundle.threshold, model_id=bundle.model_id, threads=threads)


__all__ = ["Scorer", "build_scorer"]
