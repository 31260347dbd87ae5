"""The `numpy` runtime: the label-free `dedoppler` architecture scored by the vectorised numpy
de-Doppler search (cropray.models.physics_np) -- no network, torch-free."""

from __future__ import annotations

import importlib.util

import numpy as np

from cropray.fastpath.specs import in_chunks


def numpy_runtime() -> bool:
    """Whether the numpy de-Doppler (cropray.models.physics_np) is installed in this cropray."""
    return importlib.util.find_spec("cropray.models.physics_np") is not None


class NumpyScorer:
    """np (B,1,H,W) float32 raw crops -> np (B,) float32 = the model's own scores (within 1e-5)."""

    def __init__(self, arch: str, hparams: dict, *, batch: int, threads: int = 1):
        from cropray.models.physics_np import dedoppler_score_np

        if arch != "dedoppler":
            raise RuntimeError(f"the numpy runtime scores the label-free dedoppler architecture only, not {arch}")
        self._fn, self.hparams, self.batch = dedoppler_score_np, dict(hparams), int(batch)
        self.threads = max(1, int(threads))  # chunks of a call spread over threads (numpy releases the GIL)
        self.threshold: float | None = None
        self._info = {"path": "numpy", "precision": "fp32", "runtime": "numpy", "device": "cpu", "batch": self.batch,
                      "threads": self.threads}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        # one call per `batch` rows; inside it, 64-crop chunks go to `threads` threads
        return in_chunks(lambda c: self._fn(c, self.hparams, threads=self.threads), x, self.batch)

    def describe(self) -> dict:
        return {**self._info, "threshold": self.threshold}
