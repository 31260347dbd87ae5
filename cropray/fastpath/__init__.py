"""How a model is run: `build_scorer(bundle_or_model, ...)` -> a checked scorer (np (B,1,H,W) -> np (B,)).

One runtime per device (specs.py): on CPU ONNX Runtime fp32 (int8 where the bundle's path-aware CV
admits it and it agrees with the eager model on this CPU), on CUDA torch with channels_last and bf16
autocast; the eager fp32 model is the reference, `fold_cl` the fallback.

Files: specs.py (the runtimes, torch-free), policy.py (auto's order, torch-free), isa.py (the CPU's int8
level, torch-free), graph_cache.py (GraphPack: the exported graph as hash-checked data, in a bundle or
the one on-disk cache, torch-free), ort.py (the ONNX Runtime scorer and the int8 quantization,
torch-free), start.py (a CPU scorer from packs, torch-free), export.py (torch -> GraphPack),
preprocess.py (the numpy RobustNorm of cropray.models.physics_np as a torch module), fold.py (BN folding), torch_paths.py (eager,
fold_cl, cuda_amp), physics.py (the label-free numpy runtime), scorer.py (`build_scorer`).
"""

from cropray._lazy import lazy_exports

_EXPORTS = {
    "PATHS": "cropray.fastpath.specs",
    "TOLERANCE": "cropray.fastpath.specs",
    "PathSpec": "cropray.fastpath.specs",
    "build_scorer": "cropray.fastpath.scorer",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)  # importing the package imports none of them
