"""Model bundles: a directory of data, never code.

    MODEL/
      manifest.json            a `BundleManifest` (cropray.bundle_manifest): format version, arch +
                               hparams, input shape, preprocessing, threshold, training summary, metrics,
                               versions, sha256 of every other file, and `bundle_sha256`, the digest of
                               all of it (re-derived on load: an edited manifest is refused)
      model.safetensors        the state dict (weights, BN statistics, Siamese gallery buffers)
      calibration.safetensors  optional: {"crops": (n, 1, H, W) float32} training crops for int8 calibration
      graph.onnx, graph.json   optional: the fp32 network exported at training time with its eager check
                               scores (cropray.bundle_graph), so a scoring actor needs no export

Only JSON and safetensors are read or written: no pickle, no torch.load. A bundle is written into a
temporary sibling directory and renamed into place, so a half-written bundle is never visible.
`bundle_sha256` leaves out the creation time, so re-saving the same model gives the same `model_id`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import safetensors.torch
import torch
from torch import nn

import cropray
from cropray.bundle_graph import GRAPH_FILE, GRAPH_META, GraphError, GraphPack, check_crops
from cropray.bundle_manifest import (
    CALIBRATION_FILE,
    FORMAT_VERSION,
    MANIFEST,
    MODEL_FILE,
    BundleManifest,
    read_bundle_files,
    read_manifest,
    verify_blobs,
)
from cropray.errors import BundleError, ConfigError, CroprayError
from cropray.models import RobustNorm, build_model, list_models, model_class
from cropray.models.policy import known

__all__ = ["CALIBRATION_FILE", "FORMAT_VERSION", "MANIFEST", "MODEL_FILE", "Bundle", "BundleManifest",
           "load_bundle", "load_bundle_bytes", "read_bundle_files", "read_manifest", "save_bundle"]


@dataclass
class Bundle:
    """A verified, loaded bundle. `model` is on CPU in eval mode."""

    model: nn.Module
    manifest: BundleManifest
    path: Path | None  # None when built from shipped bytes
    calibration_crops: np.ndarray | None  # (n, 1, H, W) float32
    graph_pack: GraphPack | None = None  # the exported fp32 network (None: a bundle saved without it)

    @property
    def arch(self) -> str:
        return self.manifest.arch

    @property
    def threshold(self) -> float:
        return self.manifest.threshold

    @property
    def model_id(self) -> str:  # "<arch>-<bundle_sha256[:12]>", written next to every score
        return self.manifest.model_id

    @property
    def bundle_sha256(self) -> str:
        return self.manifest.bundle_sha256

    @property
    def input_shape(self) -> tuple[int, int]:  # (H, W) the model was trained on
        return self.manifest.input_shape


def save_bundle(model: nn.Module, out_dir, *, threshold: float, train_summary: dict, metrics: dict,
                calibration_crops: np.ndarray | None = None, extra: dict | None = None,
                overwrite: bool = False, input_shape: tuple[int, int] | None = None,
                execution_paths=None, graph: GraphPack | None = None) -> Path:
    """Write `model` as a bundle directory at `out_dir` (atomically) and return its path.

    input_shape (H, W) defaults to the calibration crops' shape, else train_summary["input_shape"]
    (or "crop_shape"), else (64, 64). execution_paths: the path-aware CV record
    (cropray.bundle_quality.ExecutionPaths; None: fp32 only). graph: the fp32 network exported from
    this model (`cropray.fastpath.export.make_pack`; None: scoring exports it on first use and caches it).
    """
    arch = getattr(model, "arch_name", None)
    if not isinstance(arch, str) or not known(arch) or type(model) is not model_class(arch):
        raise BundleError(f"cannot save {type(model).__name__}: not a registered cropray model")
    problem = model.bundle_problem()
    if not isinstance(getattr(model, "preprocess", None), RobustNorm):
        # e.g. swapped for nn.Identity to train on pre-normalised crops: the bundle would rebuild a
        # RobustNorm from hparams and score differently from what was evaluated.
        problem = "model.preprocess was replaced; restore its RobustNorm before saving the bundle"
    if problem:
        raise BundleError(problem)
    thr = _finite_float(threshold, "threshold")
    calib = _check_calibration(calibration_crops)
    shape = _input_shape(input_shape, calib, train_summary)
    if graph is not None:
        _check_graph(model, graph, calib, shape)
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise CroprayError(f"{out}: already exists and is not empty; pass --overwrite to replace it")
    if out.exists() and not out.is_dir():
        raise CroprayError(f"{out}: exists and is not a directory")

    fields = dict(
        arch=arch, hparams=_jsonable(model.hparams, "hparams"), input_shape=shape,
        preprocessing=model.preprocess.describe(), score=type(model).spec.score_meaning,
        model_state=_jsonable(model.state_summary(), "model_state"), threshold=thr,
        train_summary=_jsonable(train_summary or {}, "train_summary"), metrics=_jsonable(metrics or {}, "metrics"),
        extra=_jsonable(extra or {}, "extra"), cropray_version=cropray.__version__,
        torch_version=torch.__version__, created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        execution_paths=execution_paths)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        # clone(): safetensors refuses tensors that share storage (e.g. tied or viewed buffers).
        state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
        # One metadata key only: safetensors writes metadata from a hash map, so with two keys their
        # order (and the file's sha256, hence the model_id) would change from save to save.
        blobs = {MODEL_FILE: safetensors.torch.save(state, metadata={"format": "pt"})}
        if calib is not None:
            blobs[CALIBRATION_FILE] = safetensors.torch.save({"crops": torch.from_numpy(calib)})
        if graph is not None:
            blobs.update(graph.files())
        for name, data in blobs.items():
            _write(tmp / name, data)
        files = {name: hashlib.sha256(data).hexdigest() for name, data in blobs.items()}
        manifest = BundleManifest(files=files, **fields).signed()
        BundleManifest.from_json(manifest.to_json(), out / MANIFEST)  # refuse now what a load would refuse
        _write(tmp / MANIFEST, manifest.to_json())
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def load_bundle(path) -> Bundle:
    """Load and verify a bundle; every problem is a BundleError (exit 2) that names the file."""
    manifest, blobs = read_bundle_files(path)
    return _build(manifest, blobs, Path(path), Path(path))


def load_bundle_bytes(blobs: dict[str, bytes], where: str = "shipped bundle") -> Bundle:
    """A bundle from its files' bytes ({name: bytes}, as `read_bundle_files` returns them): what an
    actor receives through the object store. Digest and hashes are checked again; nothing is written."""
    return _build(verify_blobs(blobs, where), blobs, Path(where), None)


def _build(manifest: BundleManifest, blobs: dict[str, bytes], where: Path, path: Path | None) -> Bundle:
    """The model of a verified manifest, its weights loaded from `blobs` (shapes checked)."""
    mf, arch = where / MANIFEST, manifest.arch
    if not known(arch):
        raise BundleError(f"{mf}: unknown architecture {arch!r}; this cropray knows "
                          f"{', '.join(list_models())} (a newer cropray may be needed)")
    try:
        model = build_model(arch, **manifest.hparams)
    except (ConfigError, CroprayError, TypeError) as e:
        raise BundleError(f"{mf}: {e}") from None
    state = _load_tensors(blobs[MODEL_FILE], where / MODEL_FILE)
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise BundleError(f"{where / MODEL_FILE}: state dict does not match {arch!r} with these hparams "
                          f"(missing: {missing[:5]}, unexpected: {unexpected[:5]})")
    model_shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    wrong = [f"{k}: file {tuple(state[k].shape)} vs model {shape}" for k, shape in model_shapes.items()
             if tuple(state[k].shape) != shape and not k.startswith("gallery_")]  # galleries resize
    if wrong:
        raise BundleError(f"{where / MODEL_FILE}: weights do not fit {arch!r} with these hparams "
                          f"({'; '.join(wrong[:3])})")
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, CroprayError) as e:
        raise BundleError(f"{where / MODEL_FILE}: weights do not fit {arch!r}: {e}") from None
    model.eval()

    calib = None
    if CALIBRATION_FILE in blobs:
        crops = _load_tensors(blobs[CALIBRATION_FILE], where / CALIBRATION_FILE).get("crops")
        if crops is None:
            raise BundleError(f"{where / CALIBRATION_FILE}: no 'crops' tensor")
        calib = crops.numpy().astype(np.float32, copy=False)
    return Bundle(model=model, manifest=manifest, path=path, calibration_crops=calib,
                  graph_pack=graph_pack(manifest, blobs, where))


def graph_pack(manifest: BundleManifest, blobs: dict[str, bytes], where) -> GraphPack | None:
    """The bundle's exported network (hashes already verified with the manifest's), torch-free; None
    when the bundle has none; BundleError when only one of its two files is listed or graph.json is bad."""
    have = {GRAPH_FILE, GRAPH_META} & set(manifest.files)
    if not have:
        return None
    if len(have) == 1:
        raise BundleError(f"{where}: lists {next(iter(have))} without its pair ({GRAPH_FILE} + {GRAPH_META})")
    try:
        return GraphPack.from_files(blobs, str(where))
    except GraphError as e:
        raise BundleError(str(e)) from None


def _check_graph(model: nn.Module, graph: GraphPack, calib, shape) -> None:
    """The pack must be this model's: its stored eager check scores are recomputed here (32 crops)."""
    if list(graph.meta.get("input_shape") or []) != list(shape):
        raise BundleError(f"graph.json's input_shape {graph.meta.get('input_shape')} is not the bundle's {list(shape)}")
    x = torch.from_numpy(check_crops(calib, shape))
    with torch.inference_mode():
        ref = model.eval()(x).float().numpy().reshape(-1)
    got = graph.check_scores
    if got.shape != ref.shape or not np.allclose(got, ref, rtol=0, atol=1e-6):
        raise BundleError("graph.json's check scores are not this model's eager scores: the graph was exported "
                          "from another model (or other calibration crops)")


def _load_tensors(data: bytes, where: Path) -> dict[str, torch.Tensor]:
    try:
        return safetensors.torch.load(data)
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise BundleError(f"{where}: not a readable safetensors file ({e})") from None


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished temp dir to `out`; an old `out` is moved aside first and removed after."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        if old is not None:
            os.rename(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _finite_float(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise CroprayError(f"{name}={value!r} must be a number") from None
    if not math.isfinite(v):
        raise CroprayError(f"{name}={value!r} must be finite")
    return v


def _check_calibration(crops) -> np.ndarray | None:
    if crops is None:
        return None
    arr = np.ascontiguousarray(np.asarray(crops, dtype=np.float32))
    if arr.ndim != 4 or arr.shape[1] != 1 or arr.shape[0] == 0:
        raise CroprayError(f"calibration_crops must be (n, 1, H, W) with n > 0; got {arr.shape}")
    if not np.isfinite(arr).all():
        raise CroprayError("calibration_crops contain NaN or inf")
    return arr.copy()  # own the memory: torch.from_numpy must not alias a caller's (read-only) array


def _input_shape(explicit, calib, train_summary) -> tuple[int, int]:
    shape = explicit
    if shape is None and calib is not None:
        shape = calib.shape[-2:]
    if shape is None and isinstance(train_summary, dict):
        shape = train_summary.get("input_shape") or train_summary.get("crop_shape")
    if shape is None:
        shape = (64, 64)
    try:
        h, w = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise CroprayError(f"input_shape {shape!r} must be two integers (H, W)") from None
    if h < 1 or w < 1:
        raise CroprayError(f"input_shape {shape!r} must be positive")
    return h, w


def _jsonable(obj, where: str):
    """Plain JSON types only: numpy scalars/arrays and tuples converted, NaN/inf -> null."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist(), where)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, Path):
        return str(obj)
    raise CroprayError(f"{where}: {type(obj).__name__} cannot be stored in a bundle manifest (JSON only)")
