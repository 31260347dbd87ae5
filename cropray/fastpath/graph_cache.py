"""Warm start: what a scorer build computed from the bundle alone, kept on disk, reused without torch.

Why (issue 12, lever 4): a `cropray score` actor on 2 shared cores spent 12-25 s before its first
rows, every run: importing torch (2-8 s), rebuilding the model, exporting the ONNX graph, checking it
against the eager model and probing the candidates -- the same work, with the same result, for every
archive scored with the same bundle on the same machine. A full build whose winner is an ONNX Runtime
path (`onnx_fp32` or `onnx_int8`) therefore stores an entry here, and the next actor with the same key scores through ONNX Runtime and
the numpy RobustNorm alone: no torch import, no model, no export, no probe.

Entry `<cache>/warm/<key>/`: `graph.onnx` (the exported network: an ONNX protobuf, data loaded by
onnxruntime, never code), `check.bin` (K float32 check crops, then their reference scores computed by
the full build: fp32 *eager* scores for onnx_fp32; for onnx_int8 the quantized graph's own scores,
which the full build checked against eager within TOLERANCE["int8"]) and `entry.json` (path, threshold, preprocessing config, the rows up to which no
compile would pay, the full build's description, the sha256 of both files, and `entry_sha256` over
the rest of the JSON). Loading re-derives every digest; any mismatch, a missing file or an entry
older than `MAX_AGE_S` is a miss, and a damaged entry is deleted so the next full build rewrites it.

The key covers everything the full build's result depends on: the bundle's sha256 (weights,
threshold, hparams, path-aware CV record), CPU model, threads, model batch, device, precision and
compile requests, whether probing is on, the versions of cropray, torch, onnxruntime, onnx and numpy,
and a digest of cropray's model and fast-path source (an edited model in a checkout is a new key).

The lighter check on reuse (instead of the full eager comparison on every build): the graph's bytes
are the ones the full build checked against eager fp32 on this machine (sha256), and this process's
ONNX Runtime + numpy preprocessing must reproduce the stored scores of the K check crops within
`TOLERANCE["fp32"]` (for onnx_fp32 the full build's own tolerance; for onnx_int8 a reproducibility check
of the same quantized graph on the same CPU, threads and ONNX Runtime version, all in the key). The eager scores themselves cannot have changed: the
eager model is a function of the weights (bundle sha256), the model code (source digest) and torch
(version), all in the key. What this does not defend against is someone with write access to the
cache rewriting graph, check scores and digests consistently -- the same person can edit the
installed packages; the cache lives in the user's own ~/.cache (0700 folders).

Torch-free on purpose: imported by an actor before it decides whether it needs torch at all.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cropray.fastpath.specs import TOLERANCE

VERSION = 1
MAX_AGE_S = 30 * 86400  # as the probe cache (probe.py): a month-old measurement is re-taken
CHECK_CROPS = 32  # crops of the reuse check: ~10-30 ms of ONNX Runtime on one thread
INPUT = "z"  # the ONNX graph's input name (onnx_path.export_network)
SERVED = ("onnx_fp32", "onnx_int8")  # the paths a warm start serves: their runtime needs no torch


class WarmMismatch(RuntimeError):
    """A cached entry that does not reproduce its stored check scores here."""


def cache_root() -> Path:
    """$CROPRAY_CACHE_DIR, else $XDG_CACHE_HOME/cropray, else ~/.cache/cropray (as probe.cache_path's folder)."""
    base = os.environ.get("CROPRAY_CACHE_DIR")
    if not base:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cropray"
    return Path(base)


def _version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def source_digest() -> str:
    """sha256 over cropray's model and fast-path sources (a few ms): the eager model's code, in the key."""
    import cropray

    root = Path(cropray.__file__).parent
    h = hashlib.sha256()
    for f in sorted([*root.glob("models/**/*.py"), *root.glob("fastpath/*.py")]):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def cpu_model() -> str:
    """The CPU's model name (cache keys: a figure measured on one CPU is not reused on another)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def warm_key(bundle_sha256: str, *, threads: int, batch: int, device: str, precision: str, compile_) -> str:
    """The entry's name: a digest of everything the full build's result depends on (module docstring)."""
    import cropray

    parts = {"bundle": bundle_sha256, "threads": int(threads), "batch": int(batch), "device": device,
             "precision": precision, "compile": str(compile_), "cpu": cpu_model(),
             "probe": os.environ.get("CROPRAY_PROBE", "1"), "cropray": cropray.__version__,
             "torch": _version("torch"), "onnxruntime": _version("onnxruntime"), "onnx": _version("onnx"),
             "numpy": np.__version__, "src": source_digest(), "v": VERSION}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


@dataclass
class WarmEntry:
    meta: dict  # entry.json without the digests: path, threshold, preprocess, stride, max_rows, info
    graph: bytes  # the ONNX network (normalised (B,1,H,W) -> (B,))
    check_x: np.ndarray  # (K, 1, H, W) float32 raw crops
    check_ref: np.ndarray  # (K,) float32 fp32 eager scores of check_x

    @property
    def max_rows(self) -> float:
        m = self.meta.get("max_rows")
        return float("inf") if m is None else float(m)


def _digest(obj: dict) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def store(key: str, *, graph: bytes, check_x: np.ndarray, check_ref: np.ndarray, meta: dict) -> Path | None:
    """Write the entry atomically (a temporary folder renamed into place); None when it was not written
    (a read-only home costs the next actor a full build, nothing else)."""
    check_x = np.ascontiguousarray(check_x, dtype=np.float32)
    check_ref = np.ascontiguousarray(check_ref, dtype=np.float32).reshape(-1)
    check = check_x.tobytes() + check_ref.tobytes()
    body = {**meta, "v": VERSION, "t": time.time(), "check_shape": list(check_x.shape),
            "graph_sha256": hashlib.sha256(graph).hexdigest(), "check_sha256": hashlib.sha256(check).hexdigest()}
    body["entry_sha256"] = _digest(body)
    root = cache_root() / "warm"
    final, tmp = root / key, None
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{key[:8]}-"))
        (tmp / "graph.onnx").write_bytes(graph)
        (tmp / "check.bin").write_bytes(check)
        (tmp / "entry.json").write_text(json.dumps(body, indent=1, sort_keys=True, default=str))
        shutil.rmtree(final, ignore_errors=True)  # a stale or damaged entry under the same key
        os.replace(tmp, final)  # two actors storing at once: one entry wins, both are whole
        return final
    except OSError:  # not writable, or another actor's entry landed between rmtree and replace
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        return None


def drop(key: str) -> None:
    shutil.rmtree(cache_root() / "warm" / key, ignore_errors=True)


def load(key: str) -> tuple[WarmEntry | None, str]:
    """(entry, "hit") or (None, why): "absent", "expired", or what failed its check (then deleted)."""
    d = cache_root() / "warm" / key
    try:
        body = json.loads((d / "entry.json").read_text())
    except FileNotFoundError:
        return None, "absent"
    except (OSError, ValueError) as e:
        drop(key)
        return None, f"unreadable entry.json ({type(e).__name__}): deleted"
    try:
        meta = {k: v for k, v in body.items() if k != "entry_sha256"}
        if body.get("entry_sha256") != _digest(meta) or body.get("v") != VERSION:
            raise ValueError("entry.json digest mismatch")
        if time.time() - float(body["t"]) > MAX_AGE_S:
            drop(key)
            return None, "expired"
        graph = (d / "graph.onnx").read_bytes()
        check = (d / "check.bin").read_bytes()
        if hashlib.sha256(graph).hexdigest() != body["graph_sha256"]:
            raise ValueError("graph.onnx sha256 mismatch")
        if hashlib.sha256(check).hexdigest() != body["check_sha256"]:
            raise ValueError("check.bin sha256 mismatch")
        shape = tuple(int(s) for s in body["check_shape"])
        n = int(np.prod(shape))
        arr = np.frombuffer(check, np.float32)
        if arr.size != n + shape[0]:
            raise ValueError("check.bin size")
        return WarmEntry(meta, graph, arr[:n].reshape(shape), arr[n:]), "hit"
    except (OSError, ValueError, KeyError, TypeError) as e:
        drop(key)
        return None, f"damaged entry ({e}): deleted"


def session(model_bytes: bytes, threads: int):
    """An ONNX Runtime CPU session over `model_bytes`, `threads` intra-op threads, no spinning (so an
    idle session does not burn the CPU Ray's read tasks need)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, int(threads))
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3  # errors only: the CPU provider's notes would flood actor logs
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


class WarmScorer:
    """np (B,1,H,W) float32 finite raw crops -> np (B,) float32: numpy RobustNorm, then the ONNX graph
    in chunks of the model batch -- the computation of the `onnx_fp32` / `onnx_int8` path, without torch.

    Built from a loaded entry; raises WarmMismatch when the check crops do not reproduce their stored
    scores within TOLERANCE["fp32"] (module docstring). Not thread-safe (one per actor, like fastpath.Scorer)."""

    def __init__(self, entry: WarmEntry, *, threads: int):
        t0 = time.perf_counter()
        self.entry, self.threads = entry, int(threads)
        self.batch = int(entry.meta["batch"])
        self.path = str(entry.meta.get("path", SERVED[0]))
        if self.path not in SERVED:
            raise WarmMismatch(f"entry for path {self.path!r}: a warm start serves only {', '.join(SERVED)}")
        self.threshold = float(entry.meta["threshold"])
        self._pre = entry.meta.get("preprocess_cfg")  # None: the graph holds the preprocessing
        self._sess = session(entry.graph, threads)
        got = self(entry.check_x)
        err = float(np.max(np.abs(got - entry.check_ref))) if got.shape == entry.check_ref.shape else float("inf")
        if not err <= TOLERANCE["fp32"]:  # also NaN
            raise WarmMismatch(f"cached graph reproduces its check scores only within {err:.3g}")
        self.check_max_abs_diff = err
        self.build_s = round(time.perf_counter() - t0, 3)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)  # (B,1,H,W)
        if x.ndim != 4:
            raise ValueError(f"expected crops (B,1,H,W), got shape {x.shape}")
        if len(x) == 0:
            return np.empty(0, np.float32)
        if not np.isfinite(x).all():  # the torch path's fallback; scoring quarantines these before
            raise ValueError("non-finite crops reached the warm scorer")
        if len(x) <= self.batch:  # as fastpath Runner(pad=False): one call up to the batch, else chunks
            return self._run(x)
        return np.concatenate([self._run(x[i:i + self.batch]) for i in range(0, len(x), self.batch)])

    def _run(self, x: np.ndarray) -> np.ndarray:
        """One chunk (b <= batch): preprocessing per chunk, as the torch-side path (and cache-sized)."""
        from cropray.fastpath.robust_numpy import robust_norm_numpy

        z = x if self._pre is None else np.ascontiguousarray(robust_norm_numpy(x, **self._pre), np.float32)
        out = self._sess.run(None, {INPUT: z})[0]  # (b,)
        return np.asarray(out, dtype=np.float32).reshape(-1)

    def describe(self) -> dict:
        return {**(self.entry.meta.get("info") or {}), "path": self.path, "warm_start": True, "build_s": self.build_s,
                "threads": self.threads, "ort_threads": self.threads, "threshold": self.threshold,
                "check_max_abs_diff": self.check_max_abs_diff, "check_crops": len(self.entry.check_ref)}
