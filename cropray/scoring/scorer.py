"""`ScoreBatch`: the callable class each Ray Data actor runs; plain Python, testable on a real batch.

It loads the bundle once (in `__init__`), then maps one Arrow batch of tagged input frames
(`cropray.scoring.source`) to one Arrow table with exactly one output row per input row (1:1, so
the pipeline declares `udf_modifying_row_count=False`):

    _unit int32, _row int64, _kind int8 (0 scored, 1 quarantined, 2 read-error marker),
    crop_id, score float32 (null unless scored), is_signal bool (null unless scored),
    reason string (null when scored), <keep columns>,
    _worker, _maxrss_kb, _path (which process scored the rows, its peak RSS, the fastpath path)

Validation and decoding are vectorised over the Arrow buffers (`validate_decode`); the model
(`cropray.fastpath` scorer) runs on chunks of `model_batch` rows. The crop column never leaves the actor.
"""

from __future__ import annotations

import os
import resource
import socket
from pathlib import Path

import numpy as np
import pyarrow as pa

from cropray.archive import CROP, CropSpec, validate_decode
from cropray.scoring.source import ERROR, ROW, UNIT

SCORED, QUARANTINED, READ_ERROR = 0, 1, 2
KIND, WORKER, MAXRSS, PATH = "_kind", "_worker", "_maxrss_kb", "_path"
NON_FINITE_SCORE = "non_finite_score"  # a valid crop the model returned NaN/inf for


def bundle_files(path: str | Path) -> dict[str, bytes]:
    """The bundle's manifest.json and the files it lists as {name: bytes}, digest and hashes verified:
    shipped through the object store so actors on nodes that cannot see the driver's disk load the
    very same bundle (and check it again)."""
    from cropray.bundle_manifest import read_bundle_files

    return read_bundle_files(path)[1]


def _load(bundle):
    """A Bundle from a path, a {name: bytes} dict, or an ObjectRef to such a dict."""
    from cropray.bundle import load_bundle, load_bundle_bytes

    if type(bundle).__name__ == "ObjectRef":  # fn_constructor_kwargs deliver refs unresolved
        import ray

        bundle = ray.get(bundle)
    if isinstance(bundle, dict):
        return load_bundle_bytes(bundle)  # straight from the shipped bytes: no temp dir
    return load_bundle(bundle)


class ScoreBatch:
    """Validate, decode and score one batch of crops; see the module docstring for the output."""

    def __init__(self, bundle, spec: CropSpec, *, precision: str = "auto", compile="auto", device: str = "auto",
                 threads: int | None = None, model_batch: int = 128, expected_rows: int | None = None,
                 features: int = 0):
        from cropray.fastpath import build_scorer

        self.bundle = _load(bundle)
        self.spec = spec
        self.threshold = float(self.bundle.threshold)
        # `cropray suggest` (features > 0): extra `_feat`/`_track` columns, cropray/suggest/features.py;
        # a copy of the plain model, taken before the fast path folds or quantizes it.
        self.features = _suggest_features(self.bundle.model, features) if features else None
        # threads = the CPUs this actor holds; torch would otherwise use every core of the node.
        # The scorer calls the model on chunks of `model_batch` (compiled paths are traced at it).
        self.scorer = build_scorer(self.bundle, precision=precision, compile=compile, device=device,
                                   threads=threads, batch_size=model_batch, expected_rows=expected_rows)
        # is_signal at the threshold calibrated for the path that runs (path-aware CV), else the bundle's
        self.threshold = float(self.scorer.threshold)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.path = str(self.describe().get("path", precision))  # the execution path the fastpath chose

    def describe(self) -> dict:
        return dict(self.scorer.describe(), model_id=self.bundle.model_id)

    def __call__(self, batch: pa.Table) -> pa.Table:
        n = batch.num_rows
        x, check = validate_decode(batch, self.spec)  # x: (n_valid, 1, H, W) float32, valid rows in order
        valid = check.valid.copy()  # (n,) bool
        reasons = check.reasons.copy()  # (n,) object: None | reason code
        full = np.zeros(n, np.float32)
        if len(x):
            s = self.scorer(x)  # (n_valid,) float32
            full[valid] = s
            bad = ~np.isfinite(s)
            if bad.any():
                idx = np.flatnonzero(valid)[bad]
                valid[idx] = False
                reasons[idx] = NON_FINITE_SCORE
        kind = np.where(valid, SCORED, QUARANTINED).astype(np.int8)
        rows = batch.column(ROW).to_numpy()
        err = rows < 0  # read-error markers (source.error_frame)
        if err.any():
            kind[err] = READ_ERROR
            reasons[err] = batch.column(ERROR).to_numpy(zero_copy_only=False)[err]
        cols = {
            UNIT: batch.column(UNIT),
            ROW: batch.column(ROW),
            KIND: pa.array(kind),
            "crop_id": batch.column("crop_id"),
            "score": pa.array(full, mask=~valid),
            "is_signal": pa.array(full >= self.threshold, mask=~valid),
            "reason": pa.array(reasons, type=pa.string()),
        }
        for name in batch.column_names:
            if name not in cols and name not in (CROP, ERROR):
                cols[name] = batch.column(name)  # --keep columns, passed through
        if self.features is not None:  # suggest's extra columns (never committed: names start with _)
            from cropray.suggest.features import extra_columns

            cols.update(extra_columns(self.features, x, check.valid))
        # Which process scored these rows, and its peak RSS so far: the run report's memory figures.
        cols[WORKER] = pa.repeat(pa.scalar(self.worker), n)
        cols[MAXRSS] = pa.repeat(pa.scalar(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, pa.int64()), n)
        cols[PATH] = pa.repeat(pa.scalar(self.path), n)
        return pa.table(cols)


def _suggest_features(model, dim: int):
    import copy

    from cropray.suggest.features import SuggestFeatures

    return SuggestFeatures(copy.deepcopy(model), dim)
