"""`build_scorer`: a bundle (or a plain model) -> the fastest accurate scorer this machine can run."""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

from cropray.errors import ConfigError, CroprayError
from cropray.fastpath import policy, probe
from cropray.fastpath.capabilities import Capabilities, detect
from cropray.fastpath.paths import PATHS, PathSpec, Runner, prepare

log = logging.getLogger("cropray.fastpath")

DEFAULT_BATCH = 128  # compiled paths peak at 32-128 crops per call here and lose 30-50% at 512+


class Scorer:
    """Callable: x np.ndarray (B,1,H,W) float32 (read-only is fine) -> np.ndarray (B,) float32 scores.

    Built once per process/actor (the compile cost is paid here, not per batch). Not thread-safe.
    """

    def __init__(self, runner: Runner, *, device: str, threshold: float | None, info: dict[str, Any]):
        self._runner = runner
        self.device = device
        self.threshold = threshold
        self._info = info

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)  # no copy when already float32 C-contiguous
        if x.ndim != 4:
            raise ValueError(f"expected crops (B,1,H,W), got shape {x.shape}")
        if len(x) == 0:
            return np.empty(0, np.float32)
        with warnings.catch_warnings():
            # Ray/Arrow batches are read-only views; torch only warns, and no path writes its input
            # (preprocessing starts with out-of-place ops), so share the memory instead of copying.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            t = torch.from_numpy(x)  # (B,1,H,W) zero-copy
        if self.device != "cpu":
            t = t.to(self.device, non_blocking=True)
        with torch.inference_mode():
            out = self._runner(t)  # (B,) float32
        return out.float().cpu().numpy()

    def describe(self) -> dict[str, Any]:
        """The path actually used: precision, compiled, channels_last, bn_folded, device, threads, ..."""
        return {**self._info, "threads": torch.get_num_threads()}

    def ort_pipeline(self):
        """The `onnx_path.OrtPipeline` this scorer runs (graph bytes + preprocessing config), or None
        for a torch path: what a scoring actor stores for the next one's warm start (graph_cache.py)."""
        from cropray.fastpath.onnx_path import OrtPipeline

        fn = self._runner.fn
        return fn if isinstance(fn, OrtPipeline) else None


def _unpack(obj, threshold, calibration, input_shape):
    """(model, threshold, model_id, calibration np or None, (H, W)) from a Bundle or a plain nn.Module."""
    if isinstance(obj, nn.Module):
        return obj, threshold, getattr(obj, "arch_name", None) or type(obj).__name__, calibration, input_shape
    calib = calibration if calibration is not None else getattr(obj, "calibration_crops", None)
    shape = tuple(getattr(obj, "input_shape", None) or input_shape)
    return obj.model, obj.threshold if threshold is None else threshold, obj.model_id, calib, shape


def _example(calib: torch.Tensor | None, batch: int, shape: tuple[int, int]) -> torch.Tensor:
    """(batch,1,H,W) warm-up/trace input: real crops when we have them, else seeded exponential noise."""
    if calib is not None and len(calib):
        reps = -(-batch // len(calib))
        return calib.repeat(reps, 1, 1, 1)[:batch].contiguous()
    g = torch.Generator().manual_seed(0)
    return torch.empty(batch, 1, *shape).exponential_(generator=g)  # raw power of noise, chi2(2)/2


def build_scorer(bundle, precision: str = "auto", compile="auto", device: str = "auto",
                 threads: int | None = None, *, threshold: float | None = None, path: str | None = None,
                 batch_size: int | None = None, calibration: np.ndarray | None = None,
                 input_shape: tuple[int, int] = (64, 64), capabilities: Capabilities | None = None,
                 expected_rows: int | None = None) -> Scorer:
    """Build a scorer for a `cropray.bundle.Bundle` or a plain nn.Module (x raw (B,1,H,W) -> (B,)).

    precision: "auto" | "fp32" | "bf16" | "int8"; compile: "auto" | True | False; device: "auto" |
    "cpu" | "cuda"; threads: torch intra-op threads (match the actor's CPUs; None = leave as is).
    path: one of `paths.PATHS` by name (overrides precision/compile; the bench uses it).
    batch_size: the chunk size (and the static batch compiled paths are traced at).
    calibration: (n,1,H,W) crops for int8 scales and the auto guard when the bundle has none.
    capabilities: what to assume this machine can run (default: `detect()`; tests pass others).
    expected_rows: how many rows this scorer will see (None = unknown, charged as probe.ASSUMED_ROWS);
    with a choice to make, auto times the uncompiled candidates on this machine and compiles only when
    the compile pays back on those rows (probe.py; the figures are cached per CPU model and weights).
    An explicit request the machine cannot run raises ConfigError; a compile failure falls back
    (logged warning) to the next path, ending at the always-available fp32 `fold_cl`; when not even
    that can run the model, CroprayError lists every path's reason.
    """
    t_build = time.perf_counter()
    caps = capabilities or detect()
    explicit_threshold = threshold is not None
    # path-aware CV record (quality.ExecutionPaths): auto picks among its admissible paths, no guard
    record = getattr(getattr(bundle, "manifest", None), "execution_paths", None)
    model, threshold, model_id, calib_np, shape = _unpack(bundle, threshold, calibration, input_shape)
    device = _check_request(caps, device, precision)
    if threads is not None:
        torch.set_num_threads(int(threads))
    batch = int(batch_size or DEFAULT_BATCH)
    calib = None if calib_np is None else torch.from_numpy(np.ascontiguousarray(calib_np, dtype=np.float32))
    specs, skipped = _candidates(caps, device, precision, compile, path, model, calib, expected_rows, record)
    chooser = _Chooser(model, caps, device=device, batch=batch, example=_example(calib, batch, shape).to(device),
                       calib=calib, threshold=threshold,
                       guarded=path is None and precision == "auto" and calib is not None and record is None)
    last_resort = [] if PATHS["fold_cl"] in specs else [PATHS["fold_cl"]]  # eager fp32 always runs
    probed = None
    if path is None and len(specs) > 1 and probe.enabled():  # auto with a choice: measure (probe.py)
        spec, runner, built, g, probed = probe.choose(chooser, [*specs, *last_resort], expected_rows=expected_rows,
                                                      key=probe.cache_key(model, device=device, batch=batch))
        skipped = skipped + probed["skipped_compiles"]
    else:
        spec, runner, built, g = chooser.first_accepted([*specs, *last_resort])
    # the threshold calibrated on this path's own out-of-fold scores, when the bundle measured it
    path_thr = None if explicit_threshold or record is None else record.threshold_for(spec.name)
    threshold = threshold if path_thr is None else path_thr
    info = {"path": spec.name, "precision": spec.precision, "compiled": spec.compiled,
            "channels_last": built["channels_last"], "bn_folded": built["bn_folded"], "bn_left": built["bn_left"],
            "preprocess": built["preprocess"],
            "device": device, "batch": batch,
            "padding": "last chunk padded to batch (static shape, one compile)" if spec.compiled else None,
            "compile_s": built.get("compile_s"), "build_s": round(time.perf_counter() - t_build, 3),
            "auto": path is None and (precision == "auto" or compile == "auto"),
            "skipped": skipped, "fallbacks": chooser.fallbacks, "guard": g, "model_id": model_id,
            "threshold": threshold, "capabilities": caps.to_dict(), "probe": probed,
            "threshold_source": "explicit" if explicit_threshold else f"quality record ({spec.name})"
            if path_thr is not None else "bundle (fp32 CV)", "admissible": record and list(record.admissible),
            "runtime": spec.runtime,
            **{k: built[k] for k in ("export_s", "graph_cached", "check_max_abs_diff", "ort_threads", "quantized",
                                          "calibration_crops") if k in built}}
    return Scorer(runner, device=device, threshold=threshold, info=info)


def _check_request(caps: Capabilities, device: str, precision: str) -> str:
    """The device to use ("auto" resolved); ConfigError for a device or precision that cannot be."""
    if device == "auto":
        device = "cuda" if caps.cuda else "cpu"
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"--device {device!r} is not one of auto, cpu, cuda")
    if device == "cuda" and not caps.cuda:
        raise ConfigError("--device cuda: CUDA is not available on this machine")
    if precision not in ("auto", "fp32", "bf16", "int8"):
        raise ConfigError(f"--precision {precision!r} is not one of auto, fp32, bf16, int8")
    return device


def _candidates(caps: Capabilities, device: str, precision: str, compile_, path: str | None, model,
                calib, expected_rows: int | None, record=None) -> tuple[list[PathSpec], list[dict]]:
    """(paths to try in order, skipped paths with the reason). ConfigError when an explicit request
    (a named path, a precision) cannot run here or int8 has no calibration crops."""
    skipped: list[dict] = []
    if path is not None:
        if path not in PATHS:
            raise ConfigError(f"unknown path {path!r}; valid: {', '.join(PATHS)}")
        specs = [PATHS[path]]
        ok, why = caps.can_run(specs[0].precision, device, specs[0].compiled, specs[0].runtime)
        if not ok:
            raise ConfigError(f"path {path!r} cannot run here: {why}")
    else:
        specs, skipped = policy.candidates(caps, device, precision, compile_,
                                           has_calibration=calib is not None or record is not None)
        if record is not None and precision == "auto":  # quality measured in CV replaces the guard
            specs, inadmissible = policy.admissible_only(specs, record, has_calibration=calib is not None)
            skipped += inadmissible
        # with probing on, probe.choose charges a compile against the rows instead of this fixed rule
        specs, unpaid = (specs, []) if probe.enabled() else policy.drop_unpaid_compile(specs, compile_, expected_rows)
        specs, inert = policy.drop_inert_precision(specs, precision, model)
        skipped += unpaid + inert
        if not specs and precision != "auto":
            reasons = "; ".join(f"{s['path']}: {s['reason']}" for s in skipped)
            raise ConfigError(f"--precision {precision} cannot run on this machine ({reasons})")
    if calib is None and any(s.precision == "int8" for s in specs) and (precision == "int8" or path):
        raise ConfigError("--precision int8 needs calibration crops to set its int8 scales: the bundle has "
                          "none (re-save it with calibration crops) or pass calibration=")
    return specs, skipped


class _Chooser:
    """Tries paths in order and keeps the first that builds and passes its accuracy guard.

    `fallbacks` records every path given up on, with the reason. Each reduced precision's uncompiled
    guard (`_pre_guard`) runs at most once, however many paths share that precision.
    """

    def __init__(self, model: nn.Module, caps: Capabilities, *, device: str, batch: int, example: torch.Tensor,
                 calib: torch.Tensor | None, threshold: float | None, guarded: bool):
        self.model, self.caps, self.device, self.batch = model, caps, device, batch
        self.example, self.calib, self.threshold, self.guarded = example, calib, threshold, guarded
        self.fallbacks: list[dict] = []
        self._checked: dict[str, dict] = {}  # precision -> its uncompiled guard result

    def first_accepted(self, specs: list[PathSpec]) -> tuple[PathSpec, Runner, dict, dict | None]:
        """(spec, runner, prepare's info, guard result) of the first accepted path; CroprayError when
        none is (then even fp32 `fold_cl` could not run the model: its input shape, say, is wrong)."""
        for spec in specs:
            accepted = self._try(spec)
            if accepted is not None:
                return (spec, *accepted)
        reasons = "; ".join(f"{f['path']}: {f['reason']}" for f in self.fallbacks)
        raise CroprayError(f"no execution path can run this model ({reasons})")

    def _precheck(self, precision: str) -> dict:
        if precision not in self._checked:
            self._checked[precision] = _pre_guard(self.model, precision, self.device, self.batch, self.example,
                                                  self.calib, self.threshold)
        return self._checked[precision]

    def _reject(self, spec: PathSpec, reason: str) -> None:
        self.fallbacks.append({"path": spec.name, "reason": reason})

    def _try(self, spec: PathSpec) -> tuple[Runner, dict, dict | None] | None:
        reduced = self.guarded and spec.precision != "fp32"
        if reduced:
            # Each reduced precision is first checked uncompiled (bf16 autocast / int8 q-dq reference),
            # so a compile (2-20 s per actor) is paid only for a precision that can pass. int8 checks bf16
            # first: its error is ~10x bf16's on our models (bench, 10k crops: max |d score| 0.1-0.3 vs
            # 0.003-0.02), so a bundle too close to its threshold for bf16 fails int8 too, and quantizing
            # costs 10-20 s per actor on one thread where bf16's check takes under 1 s.
            needed = ["bf16"] if spec.precision == "int8" and self.caps.can_run("bf16", self.device, False)[0] else []
            failed = next((p for p in [*needed, spec.precision] if self._precheck(p)["ok"] is False), None)
            if failed:
                self._reject(spec, f"accuracy pre-guard ({failed}, uncompiled): {self._checked[failed]}")
                return None
        try:
            runner, built = prepare(self.model, spec, device=self.device, batch=self.batch, example=self.example,
                                    calibration=None if self.calib is None else self.calib.to(self.device))
        except Exception as e:  # noqa: BLE001 - any compile/quantize failure means "try the next path"
            msg = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
            log.warning("fastpath: path %s failed to build (%s); falling back", spec.name, msg)
            self._reject(spec, msg)
            return None
        g = None
        # An uncompiled reduced-precision path was checked by exactly this computation already.
        if reduced and (spec.compiled or self._checked[spec.precision]["ok"] is None):
            g = _guard(self.model, runner, spec, self.calib[:policy.GUARD_CROPS].to(self.device), self.threshold)
            if not g["ok"]:
                log.warning("fastpath: path %s rejected by the accuracy guard %s", spec.name, g)
                self._reject(spec, f"accuracy guard: {g}")
                return None
        return runner, built, g


def _pre_guard(model, precision: str, device: str, batch: int, example, calib, threshold) -> dict:
    """The guard on `precision` run uncompiled; ok None when that could not be built or run (not
    conclusive: the compiled path then gets built and guarded as usual)."""
    eager = PathSpec(f"{precision}_uncompiled", precision, False)
    try:
        runner, _ = prepare(model, eager, device=device, batch=batch, example=example,
                            calibration=None if calib is None else calib.to(device))
        runner.pad = True  # an exported (int8) graph may be specialised to the example's batch size
        return _guard(model, runner, eager, calib[:policy.GUARD_CROPS].to(device), threshold)
    except Exception as e:  # noqa: BLE001 - not conclusive: let the compiled path decide
        return {"ok": None, "note": f"uncompiled {precision} did not run ({type(e).__name__})"}


def _guard(model: nn.Module, runner: Runner, spec: PathSpec, crops: torch.Tensor, threshold) -> dict:
    """Compare a reduced-precision runner with the fp32 eager model on calibration crops."""
    with torch.inference_mode():
        ref = model(crops.cpu()).float().numpy()  # the model as trained, on CPU (never moved)
        got = runner(crops).float().cpu().numpy()
    return policy.guard(spec, ref, got, 0.5 if threshold is None else float(threshold))
