"""`ScoreBatch`: the callable class each Ray Data actor runs; plain Python, testable on a real batch.

It loads the bundle once (in `__init__`: hashes checked, then a warm start from this machine's cache
when an earlier actor's build left one -- cropray.scoring.warm, no torch -- else the full build),
then maps one Arrow batch of tagged input frames (`cropray.scoring.source`) to one Arrow table with
exactly one output row per input row (1:1, so the pipeline declares `udf_modifying_row_count=False`):

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
from cropray.scoring.trace import mark, process_start
from cropray.scoring.warm import WarmStart

mark("scorer_module_imported", who="proc", proc_start=process_start())  # in an actor: Python, Ray, pyarrow up

SCORED, QUARANTINED, READ_ERROR = 0, 1, 2
KIND, WORKER, MAXRSS, PATH = "_kind", "_worker", "_maxrss_kb", "_path"
NON_FINITE_SCORE = "non_finite_score"  # a valid crop the model returned NaN/inf for


def bundle_files(path: str | Path) -> dict[str, bytes]:
    """The bundle's manifest.json and the files it lists as {name: bytes}, digest and hashes verified:
    shipped through the object store so actors on nodes that cannot see the driver's disk load the
    very same bundle (and check it again)."""
    from cropray.bundle_manifest import read_bundle_files

    return read_bundle_files(path)[1]


def _resolve(bundle):
    """A path or a {name: bytes} dict (an ObjectRef to such a dict resolved)."""
    if type(bundle).__name__ == "ObjectRef":  # fn_constructor_kwargs deliver refs unresolved
        import ray

        bundle = ray.get(bundle)
    return bundle


def _load(bundle):
    """A Bundle from a path or a {name: bytes} dict (torch imported here)."""
    from cropray.bundle import load_bundle, load_bundle_bytes

    if isinstance(bundle, dict):
        return load_bundle_bytes(bundle)  # straight from the shipped bytes: no temp dir
    return load_bundle(bundle)


def _manifest(bundle):
    """The verified manifest (digest and every file's sha256 checked) of a path or shipped bytes, torch-free."""
    from cropray.bundle_manifest import read_manifest, verify_blobs

    return verify_blobs(bundle, "shipped bundle") if isinstance(bundle, dict) else read_manifest(bundle)


class ScoreBatch:
    """Validate, decode and score one batch of crops; see the module docstring for the output."""

    def __init__(self, bundle, spec: CropSpec, *, precision: str = "auto", compile="auto", device: str = "auto",
                 threads: int | None = None, model_batch: int = 128, expected_rows: int | None = None,
                 features: int = 0):
        import sys

        mark("actor_init", who="actor", torch_loaded="torch" in sys.modules)
        bundle = _resolve(bundle)
        self.spec = spec
        self.features = None
        # Warm start first (graph_cache.py): the bundle's hashes checked, then a stored ONNX graph that a
        # full build on this machine chose and checked, re-checked here on its stored eager scores: no torch.
        self.manifest = _manifest(bundle)
        warm = WarmStart(self.manifest.bundle_sha256, precision=precision, compile_=compile, device=device,
                         threads=threads, batch=model_batch)
        self.scorer = warm.scorer(expected_rows) if not features else None
        self.warm = warm.report
        if self.scorer is None:
            self._build(bundle, precision=precision, compile_=compile, device=device, threads=threads,
                        model_batch=model_batch, expected_rows=expected_rows, features=features)
            warm.store(self.bundle, self.scorer)
        self.threshold = float(self.scorer.threshold if self.scorer.threshold is not None else self.manifest.threshold)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.path = str(self.describe().get("path", precision))  # the execution path the fastpath chose
        self._first = True
        d = self.scorer.describe()
        mark("scorer_built", who="actor", path=self.path, build_s=d.get("build_s"), export_s=d.get("export_s"),
             graph_cached=d.get("graph_cached"), probe_hit=(d.get("probe") or {}).get("cache_hit"),
             warm=self.warm, torch_loaded="torch" in sys.modules)

    def _build(self, bundle, *, precision, compile_, device, threads, model_batch, expected_rows, features):
        """The full build: torch, the model from the bundle, the fast path's choice (cropray.fastpath)."""
        from cropray.fastpath.scorer import build_scorer  # torch (and the fast path) imported here

        mark("torch_imported", who="actor")
        self.bundle = _load(bundle)
        mark("bundle_loaded", who="actor")
        # `cropray suggest` (features > 0): extra `_feat`/`_track` columns, cropray/suggest/features.py;
        # a copy of the plain model, taken before the fast path folds or quantizes it.
        self.features = _suggest_features(self.bundle.model, features) if features else None
        # threads = the CPUs this actor holds; torch would otherwise use every core of the node.
        # The scorer calls the model on chunks of `model_batch` (compiled paths are traced at it).
        self.scorer = build_scorer(self.bundle, precision=precision, compile=compile_, device=device,
                                   threads=threads, batch_size=model_batch, expected_rows=expected_rows)

    def describe(self) -> dict:
        return dict(self.scorer.describe(), model_id=self.manifest.model_id, warm_start=self.warm)

    def __call__(self, batch: pa.Table) -> pa.Table:
        if self._first:
            mark("first_call", who="actor", rows=batch.num_rows)
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
        if self._first:
            self._first = False
            mark("first_call_done", who="actor")
        return pa.table(cols)


def _suggest_features(model, dim: int):
    import copy

    from cropray.suggest.features import SuggestFeatures

    return SuggestFeatures(copy.deepcopy(model), dim)
