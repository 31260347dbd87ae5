"""The execution paths' names and precisions as data, torch-free (configs such as BenchConfig check
`--paths` against them without importing torch); paths.py turns a `PathSpec` into a runner."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PathSpec:
    """How to run a model. `name` is what `--paths` and `describe()` use."""

    name: str
    precision: str  # "fp32" | "bf16" (autocast) | "int8" (PT2E static quantization; ORT's for onnx_int8)
    compiled: bool  # torch.compile (inductor, freezing on)
    optimized: bool = True  # BN folded + channels_last; False only for the `eager` reference
    runtime: str = "torch"  # "torch" | "onnxruntime" (onnx_path.py: the network exported, run by ORT)

    def to_dict(self) -> dict:
        return asdict(self)


# Every path `--paths` knows; `policy.AUTO_ORDER` ranks them for `auto`.
PATHS: dict[str, PathSpec] = {p.name: p for p in (
    PathSpec("eager", "fp32", False, optimized=False),  # the reference: the model as trained
    PathSpec("fold_cl", "fp32", False),
    PathSpec("bf16", "bf16", False),
    PathSpec("compile_fp32", "fp32", True),
    PathSpec("compile_bf16", "bf16", True),
    PathSpec("int8", "int8", True),
    PathSpec("onnx_fp32", "fp32", False, runtime="onnxruntime"),  # ORT session, numpy preprocessing
    PathSpec("onnx_int8", "int8", False, runtime="onnxruntime"),  # the same graph, ORT static int8 (convs)
)}

# Max |score - fp32 eager score| a path may show on a trained model (tests and the auto guard).
TOLERANCE = {"fp32": 1e-4, "bf16": 0.05, "int8": 0.1}
