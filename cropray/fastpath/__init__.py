"""Fast scoring path: `build_scorer(bundle_or_model, ...)` -> a callable scorer (np (B,1,H,W) -> np (B,)).

Files: capabilities.py (what this machine can run), specs.py (the paths, torch-free), fold.py (BN
folding), paths.py (execution paths and the padded fixed-batch runner), onnx_path.py (ONNX Runtime),
quantize.py (int8 PT2E), policy.py (static rules), probe.py (how `auto` measures and chooses, cached),
cascade.py (the track-statistic cascade, bench only), scorer.py (`build_scorer`), quality.py (the
bundle's per-path CV record, torch-free), path_cv.py (path-aware cross-validation at training time),
graph_cache.py (hash-checked on-disk ONNX graphs and warm-start entries), robust_numpy.py (the
torch-free RobustNorm).
"""

from cropray._lazy import lazy_exports

_EXPORTS = {
    "Capabilities": "cropray.fastpath.capabilities",
    "detect": "cropray.fastpath.capabilities",
    "PATHS": "cropray.fastpath.paths",
    "TOLERANCE": "cropray.fastpath.paths",
    "PathSpec": "cropray.fastpath.paths",
    "Scorer": "cropray.fastpath.scorer",
    "build_scorer": "cropray.fastpath.scorer",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)  # importing the package imports none of them
