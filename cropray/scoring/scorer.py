"""`ScoreBatch`: the callable class each Ray Data actor runs; plain Python, testable on a real batch.

It loads the bundle once (in `__init__`: hashes checked, then a torch-free start from the bundle's
exported graph or this machine's graph cache -- cropray.scoring.warm -- else the full build),
then maps one Arrow batch of tagged input frames (`cropray.scoring.frames`) to one Arrow table with
exactly one output row per input row (1:1, so the pipeline declares `udf_modifying_row_count=False`):

    _unit int32, _row int64, _kind int8 (0 scored, 1 quarantined, 2 read-error marker),
    crop_id, score float32 (null unless scored), is_signal bool (null unless scored),
    reason string (null when scored), <keep columns>,
    _worker, _maxrss_kb, _path (which process scored the rows, its peak RSS, the fastpath path)

Validation and decoding are vectorised over the Arrow buffers (`validate_decode`); the model
(`cropray.fastpath` runtime) runs on chunks of `model_batch` rows. The crop column never leaves the actor.
"""

from __future__ import annotations

import os
import resource
import socket
from pathlib import Path

import numpy as np
import pyarrow as pa

from cropray.archive import CROP, CropSpec, validate_decode
from cropray.scoring.frames import ERROR, ROW, UNIT
from cropray.scoring.trace import mark, process_start
from cropray.scoring.warm import fast_start

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
    """Validate, decode and score one batch of crops; see the module docstring for the output.

    extra_columns: None, or a factory `make(model) -> fn(x (n_valid,1,H,W), valid (n,) bool) -> {name:
    pa.Array of n rows}` called once with a copy of the bundle's eager model (a caller's extra output
    columns, e.g. `cropray suggest`'s features; names must start with "_": never committed).
    """

    def __init__(self, bundle, spec: CropSpec, *, precision: str = "auto", device: str = "auto",
                 threads: int | None = None, model_batch: int = 128, extra_columns=None):
        import sys

        mark("actor_init", who="actor", torch_loaded="torch" in sys.modules)
        bundle = _resolve(bundle)
        self.spec = spec
        self.extra = None
        blobs = bundle if isinstance(bundle, dict) else bundle_files(bundle)
        self.manifest = _manifest(blobs)
        self.scorer, self.warm = None, {"used": False, "reason": "extra columns need the model"}
        if extra_columns is None:  # torch-free: the bundle's graph (or the cache's), one agreement check
            self.scorer, self.warm = fast_start(self.manifest, blobs, precision=precision, device=device,
                                                threads=threads, batch=model_batch)
        if self.scorer is None:
            self._build(blobs, precision=precision, device=device, threads=threads, model_batch=model_batch,
                        extra_columns=extra_columns)
        self.threshold = float(self.scorer.threshold if self.scorer.threshold is not None else self.manifest.threshold)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.path = str(self.describe().get("path", precision))  # the runtime the fastpath chose
        self._first = True
        d = self.scorer.describe()
        mark("scorer_built", who="actor", path=self.path, build_s=d.get("build_s"), warm=self.warm,
             torch_loaded="torch" in sys.modules)

    def _build(self, blobs, *, precision, device, threads, model_batch, extra_columns):
        """The full build: torch, the model from the bundle, cropray.fastpath.build_scorer."""
        import copy

        from cropray.fastpath.scorer import build_scorer  # torch imported here

        mark("torch_imported", who="actor")
        bundle = _load(blobs)
        mark("bundle_loaded", who="actor")
        # a copy of the plain model for the caller's columns, taken before a runtime folds it
        self.extra = extra_columns(copy.deepcopy(bundle.model)) if extra_columns is not None else None
        self.scorer = build_scorer(bundle, device=device, threads=threads, precision=precision,
                                   batch_size=model_batch)

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
        if self.extra is not None:  # the caller's extra columns (never committed: names start with _)
            cols.update(self.extra(x, check.valid))
        # Which process scored these rows, and its peak RSS so far: the run report's memory figures.
        cols[WORKER] = pa.repeat(pa.scalar(self.worker), n)
        cols[MAXRSS] = pa.repeat(pa.scalar(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, pa.int64()), n)
        cols[PATH] = pa.repeat(pa.scalar(self.path), n)
        if self._first:
            self._first = False
            mark("first_call_done", who="actor")
        return pa.table(cols)

