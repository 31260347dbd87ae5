"""The one on-disk graph cache of `GraphPack`s (cropray.bundle_graph: the exported network as data).

`$CROPRAY_CACHE_DIR` (else `$XDG_CACHE_HOME/cropray`, else `~/.cache/cropray`) / `graphs/<key>/`, key =
sha256 of (bundle digest, kind "fp32"/"int8", onnxruntime version, CPU ISA level). It holds the fp32
graph of an old bundle that does not carry one (exported on first use; new bundles carry theirs) and
every int8 graph (quantized from the fp32 one on first use, for this CPU's kernels, stored once it
passed its agreement check). Each file's sha256 is kept in `sha256.json`; a damaged entry is deleted
and rebuilt. Torch-free: a scoring actor imports it before deciding whether it needs torch at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from cropray.bundle_graph import GRAPH_FILE, GRAPH_META, GraphError, GraphPack, check_crops  # noqa: F401

VERSION = 2


def cache_root() -> Path:
    """$CROPRAY_CACHE_DIR, else $XDG_CACHE_HOME/cropray, else ~/.cache/cropray."""
    base = os.environ.get("CROPRAY_CACHE_DIR")
    if not base:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cropray"
    return Path(base)


def graph_key(bundle_sha256: str, kind: str, level: str) -> str:
    """The cache entry's name: bundle digest, graph kind, onnxruntime version, CPU ISA level."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        ort = version("onnxruntime")
    except PackageNotFoundError:
        ort = None
    parts = {"bundle": bundle_sha256, "kind": kind, "onnxruntime": ort, "isa": level, "v": VERSION}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def _dir(key: str) -> Path:
    return cache_root() / "graphs" / key


def load(key: str) -> GraphPack | None:
    """The cached pack, or None when absent or damaged (a damaged entry is deleted)."""
    d = _dir(key)
    try:
        sums = json.loads((d / "sha256.json").read_text())
        blobs = {name: (d / name).read_bytes() for name in (GRAPH_FILE, GRAPH_META)}
        if any(hashlib.sha256(b).hexdigest() != sums.get(n) for n, b in blobs.items()):
            raise GraphError("sha256 mismatch")
        return GraphPack.from_files(blobs, str(d))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        shutil.rmtree(d, ignore_errors=True)
        return None


def drop(key: str) -> None:
    shutil.rmtree(_dir(key), ignore_errors=True)


def store(key: str, pack: GraphPack) -> Path | None:
    """Write the entry atomically (a temporary folder renamed into place); None when not written (a
    read-only cache costs the next actor an export or a quantization, nothing else)."""
    root, tmp = cache_root() / "graphs", None
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{key[:8]}-"))
        files = pack.files()
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        (tmp / "sha256.json").write_text(json.dumps({n: hashlib.sha256(b).hexdigest() for n, b in files.items()}))
        shutil.rmtree(_dir(key), ignore_errors=True)
        os.replace(tmp, _dir(key))  # two actors storing at once: one entry wins, both are whole
        return _dir(key)
    except OSError:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        return None
