"""`BundleManifest`: a bundle's manifest.json as a typed, frozen object, integrity-checked (no torch).

The manifest records the sha256 of every weight file *and* `bundle_sha256`, a digest over its own
canonical JSON (every field but `created` and the digest itself, so the weight hashes are covered too).
Loading re-derives the digest: an edited threshold, hyperparameter or file hash is refused, naming
manifest.json. Values that pass the digest are still checked for sense (a threshold of -1e308 written
with a re-computed digest is refused as absurd).

`read_manifest(path)` verifies the digest and the weight files' hashes without building the model
(the scoring driver needs five fields); `read_bundle_files(path)` returns the verified bytes too, which
actors rebuild the model from (`cropray.bundle.load_bundle_bytes`) without touching a disk.
A file of the bundle may be a symbolic link only to a file inside the bundle directory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from cropray.bundle_quality import ExecutionPaths
from cropray.errors import BundleError

FORMAT_VERSION = 2  # 2: bundle_sha256 covers the whole manifest (1 had no manifest digest)
MANIFEST = "manifest.json"
MODEL_FILE = "model.safetensors"
CALIBRATION_FILE = "calibration.safetensors"
MAX_SIDE = 4096  # crop side (H or W) a bundle may declare
MAX_BUNDLE_BYTES = 2 << 30  # every file of a bundle together
MAX_MANIFEST_BYTES = 16 << 20
# A threshold outside what the architecture's scores can be (ArchSpec.score_range) is absurd; for an
# unbounded score (or an unknown architecture, refused later anyway) |threshold| <= 1e6.
MAX_ABS_THRESHOLD = 1e6
_SHA = re.compile(r"[0-9a-f]{64}")
_UNSIGNED = ("created", "bundle_sha256")  # not covered by the digest: creation time, the digest itself


@dataclass(frozen=True)
class BundleManifest:
    """What manifest.json holds. Frozen: a manifest is written once, by `cropray.bundle.save_bundle`."""

    arch: str  # registered architecture name
    hparams: dict  # build_model keyword arguments
    input_shape: tuple[int, int]  # (H, W) the model was trained on
    threshold: float  # calibrated decision threshold on the score
    files: dict  # {file name: sha256 hex} of every other file of the bundle
    format_version: int = FORMAT_VERSION
    input: str = "(B, 1, H, W) float32 raw power, H = time rows, W = frequency channels"
    preprocessing: dict = field(default_factory=dict)  # the model's RobustNorm, described
    score: str = "higher = more signal-like"  # what the score means
    model_state: dict = field(default_factory=dict)  # e.g. gallery size
    train_summary: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)  # e.g. the sweep that chose the configuration
    cropray_version: str = ""
    torch_version: str = ""
    created: str = ""  # ISO time; outside the digest, so re-saving a model keeps its model_id
    # each execution path's out-of-fold quality and the paths admissible for scoring (path-aware CV,
    # cropray.bundle_quality); None = absent from the JSON (a bundle from before it: fp32 only)
    execution_paths: ExecutionPaths | None = None
    bundle_sha256: str = ""  # digest() as recorded; "" until signed()

    def digest(self) -> str:
        """sha256 of the canonical JSON of every field except `created` and `bundle_sha256`."""
        body = {k: v for k, v in self._plain().items() if k not in _UNSIGNED}
        canon = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(canon.encode()).hexdigest()

    def signed(self) -> BundleManifest:
        """This manifest with `bundle_sha256` set to its digest (what save_bundle writes)."""
        return dataclasses.replace(self, bundle_sha256=self.digest())

    @property
    def model_id(self) -> str:
        """"<arch>-<bundle_sha256[:12]>", written next to every score."""
        return f"{self.arch}-{self.bundle_sha256[:12]}"

    def to_json(self) -> bytes:
        return (json.dumps(self._plain(), indent=2, allow_nan=False) + "\n").encode()

    def to_dict(self) -> dict[str, Any]:
        return self._plain()

    # Read-only mapping access, for code that reads manifest["key"]; nothing can assign through it.
    def __getitem__(self, key: str):
        return self._plain()[key]

    def get(self, key: str, default=None):
        return self._plain().get(key, default)

    __iter__ = None  # not a mapping: iterate over to_dict()

    def _plain(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["input_shape"] = list(self.input_shape)
        # optional, so absent when None: an older bundle's digest (computed without it) still matches
        if self.execution_paths is None:
            del d["execution_paths"]
        else:
            d["execution_paths"] = self.execution_paths.to_dict()
        return json.loads(json.dumps(d))  # a deep copy: callers can never reach our dicts

    @classmethod
    def from_json(cls, data: bytes, where: Path | str = MANIFEST) -> BundleManifest:
        """Parse and verify manifest bytes: structure, digest, then the values' sense (BundleError)."""
        try:
            raw = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise BundleError(f"{where}: not valid JSON ({e})") from None
        if not isinstance(raw, dict):
            raise BundleError(f"{where}: expected a JSON object")
        _check_version(raw.get("format_version"), where)
        m = cls(**_typed(raw, where))
        try:
            digest = m.digest()
        except ValueError:  # json refuses NaN/inf: save_bundle never writes them
            raise BundleError(f"{where}: holds NaN or infinity (not written by cropray)") from None
        if raw["bundle_sha256"] != digest:
            raise BundleError(f"{where}: its digest does not match its content (bundle_sha256 "
                              f"{str(raw['bundle_sha256'])[:12]}…): manifest.json was modified after the bundle "
                              "was written; restore the original bundle or retrain")
        _check_values(m, where)
        return m


def _check_version(fv, where) -> None:
    if isinstance(fv, bool) or not isinstance(fv, int) or fv < 1:
        raise BundleError(f"{where}: format_version {fv!r} is missing or not a known bundle format")
    if fv > FORMAT_VERSION:
        raise BundleError(f"{where}: bundle format {fv} is newer than this cropray supports "
                          f"(max {FORMAT_VERSION}); upgrade cropray")
    if fv < FORMAT_VERSION:
        raise BundleError(f"{where}: bundle format {fv} has no manifest digest, so its integrity cannot be "
                          f"checked (format {FORMAT_VERSION} has one); retrain it with this cropray")


def _typed(raw: dict, where) -> dict[str, Any]:
    """The manifest's fields with their JSON types checked; unknown or missing keys refused."""
    names = {f.name: f for f in fields(BundleManifest)}
    unknown = sorted(set(raw) - set(names))
    if unknown:
        raise BundleError(f"{where}: unknown key(s) {', '.join(unknown)} (not written by cropray)")
    required = [f.name for f in names.values() if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING] + ["bundle_sha256"]
    for key in required:
        if key not in raw:
            raise BundleError(f"{where}: required key {key!r} is missing")
    out = dict(raw)
    for key in ("hparams", "files", "preprocessing", "model_state", "train_summary", "metrics", "extra"):
        if key in raw and not isinstance(raw[key], dict):
            raise BundleError(f"{where}: {key!r} must be a JSON object")
    for key in ("arch", "input", "score", "cropray_version", "torch_version", "created", "bundle_sha256"):
        if key in raw and not isinstance(raw[key], str):
            raise BundleError(f"{where}: {key!r} must be a string")
    t = raw["threshold"]
    if isinstance(t, bool) or not isinstance(t, (int, float)):
        raise BundleError(f"{where}: threshold={t!r} must be a number")
    if not math.isfinite(t):
        raise BundleError(f"{where}: threshold={t!r} is absurd: it must be a finite number")
    out["threshold"] = float(t)
    shape = raw["input_shape"]
    if (not isinstance(shape, list) or len(shape) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) for v in shape)):
        raise BundleError(f"{where}: input_shape {shape!r} must be two integers [H, W]")
    out["input_shape"] = (shape[0], shape[1])
    if "execution_paths" in raw:
        out["execution_paths"] = ExecutionPaths.from_dict(raw["execution_paths"], where)
    return out


def _check_values(m: BundleManifest, where) -> None:
    """Values a digest cannot vouch for: anyone can write a manifest and its digest."""
    if MODEL_FILE not in m.files:
        raise BundleError(f"{where}: 'files' must list {MODEL_FILE}")
    for name, digest in m.files.items():
        if Path(name).name != name or name in ("", ".", "..", MANIFEST):
            raise BundleError(f"{where}: file name {name!r} must be a plain name inside the bundle")
        if not isinstance(digest, str) or not _SHA.fullmatch(digest):
            raise BundleError(f"{where}: files[{name!r}] must be a sha256 hex digest, got {digest!r}")
    if not all(1 <= v <= MAX_SIDE for v in m.input_shape):
        raise BundleError(f"{where}: input_shape {list(m.input_shape)} must be within 1..{MAX_SIDE} per side")
    lo, hi = _score_range(m.arch)
    if not (math.isfinite(m.threshold) and lo <= m.threshold <= hi):
        raise BundleError(f"{where}: threshold={m.threshold!r} is absurd: {m.arch!r} scores lie in "
                          f"[{lo:g}, {hi:g}]")
    for name, q in (m.execution_paths.paths if m.execution_paths is not None else {}).items():
        if q.threshold is not None and not lo <= q.threshold <= hi:
            raise BundleError(f"{where}: execution_paths.paths.{name}.threshold={q.threshold!r} is absurd: "
                              f"{m.arch!r} scores lie in [{lo:g}, {hi:g}]")


def _score_range(arch: str) -> tuple[float, float]:
    from cropray.models.policy import arch_spec, known  # the torch-free registry of architectures

    r = arch_spec(arch).score_range if known(arch) else None
    return tuple(r) if r is not None else (-MAX_ABS_THRESHOLD, MAX_ABS_THRESHOLD)


def read_bundle_files(path) -> tuple[BundleManifest, dict[str, bytes]]:
    """(verified manifest, {file name: bytes} of manifest.json and every file it lists, hashes checked)."""
    root = Path(path)
    if not root.is_dir():
        raise BundleError(f"{root}: no model bundle here ({'not a directory' if root.exists() else 'not found'})")
    if not (root / MANIFEST).exists():
        raise BundleError(f"{root}: no model bundle here (no {MANIFEST})")
    real_root = root.resolve()
    data = _read_member(root, real_root, MANIFEST, MAX_MANIFEST_BYTES)
    manifest = BundleManifest.from_json(data, root / MANIFEST)
    blobs, total = {MANIFEST: data}, len(data)
    for name, digest in sorted(manifest.files.items()):
        blob = blobs[name] = _read_member(root, real_root, name, MAX_BUNDLE_BYTES - total)
        total += len(blob)
        if hashlib.sha256(blob).hexdigest() != digest:
            raise BundleError(f"{root / name}: sha256 mismatch — the bundle was modified after it was written")
    return manifest, blobs


def read_manifest(path) -> BundleManifest:
    """The bundle's verified manifest (digest and weight hashes checked; no model is built)."""
    return read_bundle_files(path)[0]


def verify_blobs(blobs: dict[str, bytes], where: str) -> BundleManifest:
    """The manifest of a bundle shipped as bytes ({name: bytes}), digest and hashes checked again."""
    if MANIFEST not in blobs:
        raise BundleError(f"{where}: no {MANIFEST} among the shipped bundle files")
    manifest = BundleManifest.from_json(blobs[MANIFEST], f"{where}/{MANIFEST}")
    for name, digest in manifest.files.items():
        if name not in blobs or hashlib.sha256(blobs[name]).hexdigest() != digest:
            raise BundleError(f"{where}/{name}: missing or sha256 mismatch in the shipped bundle")
    return manifest


def _read_member(root: Path, real_root: Path, name: str, limit: int) -> bytes:
    """Bytes of one file of the bundle; a symbolic link out of the bundle is refused (it would make
    the bundle depend on, and disclose, a file elsewhere)."""
    p = root / name
    if not p.exists() and not p.is_symlink():
        raise BundleError(f"{p}: listed in {MANIFEST} but missing")
    real = p.resolve()
    if real_root not in real.parents:
        raise BundleError(f"{p}: is a symbolic link to {real}, outside the bundle; copy the file into the bundle")
    if not real.is_file():
        raise BundleError(f"{p}: not a regular file")
    if real.stat().st_size > limit:
        raise BundleError(f"{p}: bundle larger than {MAX_BUNDLE_BYTES >> 30} GiB")
    return real.read_bytes()
