"""The scoring driver's bundle check: load the bundle as the actors will, before OUTPUT or Ray exist.

`read_manifest` checks the digest and every file's sha256, which a user can recompute after editing a
bundle. What only a load finds -- a weight file whose safetensors header is not sane, `hparams` that
no longer fit the weights -- would otherwise surface in every actor's constructor, after OUTPUT was
created and the pool started. `check_bundle(path)` finds it first, in two steps:

1. torch-free, always: every weight file parses as safetensors (8-byte header length inside the
   file, JSON header, every tensor's dtype, shape and offsets inside the data) -- `safetensors.deserialize`.
2. the build an actor does, on the same verified bytes: `cropray.bundle.load_bundle_bytes` (the
   model from `hparams`, its state dict loaded strictly, shapes checked). This imports torch on the
   driver (~1-2 s), so it is skipped when this machine already built this very bundle with this
   cropray, torch and safetensors: a marker named after `bundle_sha256` and those versions, in the
   cropray cache folder. The digest covers every file's sha256, so the same digest is the same bytes
   and the same outcome; a marker is written only after a build that passed.

An actor can still fail (the bundle replaced between the check and the actors' read, another
cropray on a worker node): `actor_bundle_error` finds the CroprayError inside Ray's wrapped error so
the run still ends with exit 2 and one line naming the file.
"""

from __future__ import annotations

import hashlib
import os
import re
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from cropray.errors import BundleError, CroprayError

if TYPE_CHECKING:
    from cropray.bundle_manifest import BundleManifest

MARKER_DIR = "bundles-checked"


def check_bundle(path) -> BundleManifest:
    """The verified BundleManifest of bundle `path`, once it loads as an actor would load it.

    Raises BundleError (exit 2) naming the bundle file at fault.
    """
    from cropray.bundle_manifest import CALIBRATION_FILE, MODEL_FILE, read_bundle_files

    manifest, blobs = read_bundle_files(path)  # digest + hashes (raises BundleError naming the file)
    where = Path(path)
    for name in (MODEL_FILE, CALIBRATION_FILE):
        if name in blobs:
            _parse_safetensors(blobs[name], where / name)
    marker = _marker(manifest.bundle_sha256)
    if marker is not None and marker.exists():
        return manifest
    from cropray.bundle import load_bundle_bytes  # torch: only for a bundle this machine has not built

    load_bundle_bytes(blobs, where=str(where))
    _write_marker(marker)
    return manifest


def _parse_safetensors(data: bytes, where: Path) -> None:
    import safetensors

    try:
        safetensors.deserialize(data)  # header length, JSON, dtypes, shapes, offsets; no torch
    except Exception as e:  # safetensors raises its own SafetensorError
        raise BundleError(f"{where}: not a readable safetensors file ({e})") from None


def _versions() -> str:
    import cropray

    out = [f"cropray={cropray.__version__}"]
    for pkg in ("torch", "safetensors"):
        try:
            out.append(f"{pkg}={metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            out.append(f"{pkg}=?")
    return ";".join(out)


def _marker(bundle_sha256: str) -> Path | None:
    """Where the 'this bundle built here' marker lives; None when the digest is not a plain hex digest."""
    if not re.fullmatch(r"[0-9a-f]{64}", bundle_sha256 or ""):
        return None
    from cropray.fastpath.graph_cache import cache_root

    key = hashlib.sha256(f"{bundle_sha256};{_versions()}".encode()).hexdigest()
    return cache_root() / MARKER_DIR / key


def _write_marker(marker: Path | None) -> None:
    if marker is None:
        return
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_name(f"{marker.name}.{os.getpid()}.tmp")
        tmp.write_text("built\n")
        os.replace(tmp, marker)
    except OSError:  # a read-only cache: the next run builds again, nothing else changes
        pass


def actor_bundle_error(e: BaseException, bundle=None) -> CroprayError | None:
    """The CroprayError an actor's constructor raised, found inside Ray's wrapping, else None.

    Ray Data reports a dead actor pool as ActorDiedError / RayTaskError whose `cause` (or the
    exception chain) holds the original error; where only the text survives, its last
    `BundleError: ...` line is used. An actor names the bytes it was shipped "shipped bundle/...":
    with `bundle` (the path the driver read) the message names that path instead.
    """
    err = _find_cropray_error(e)
    if err is not None and bundle is not None and str(err).startswith("shipped bundle/"):
        return BundleError(f"{bundle}/{str(err)[len('shipped bundle/'):]} (in a scoring actor)")
    return err


def _find_cropray_error(e: BaseException) -> CroprayError | None:
    seen: set[int] = set()
    stack = [e]
    while stack:
        cur = stack.pop()
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        # Ray's wrapper classes subclass the cause's type too (and print a traceback): only cropray's own
        if isinstance(cur, CroprayError) and type(cur).__module__.startswith("cropray."):
            return cur
        for attr in ("cause", "__cause__", "__context__"):
            nxt = getattr(cur, attr, None)
            if isinstance(nxt, BaseException):
                stack.append(nxt)
    m = re.findall(r"(?:BundleError|ArchiveError|CroprayError): ([^\n]+)", str(e))
    return BundleError(m[-1].strip()) if m else None


def hide_from_console(record) -> bool:
    """A logging filter: mark the record `hide`, which Ray Data's console handler skips (its log file
    keeps it). Returns True: the record itself is kept."""
    record.hide = True
    return True
