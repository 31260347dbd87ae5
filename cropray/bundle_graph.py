"""A bundle's exported network as data: `GraphPack` (graph.onnx + graph.json), torch-free.

`graph.onnx` is the network after the RobustNorm (normalised (B,1,H,W) -> (B,), input "z"): an ONNX
protobuf loaded by onnxruntime, never code. `graph.json` holds the numpy preprocessing's settings (null
when the graph holds it), the track prior computed beside the graph (`prior`: scale, offset, widths;
then the graph's output is the CNN's logit term and score = sigmoid(logit + scale * (track SNR -
offset)); null: the graph's output is the score), the input shape and the fp32 *eager* scores of
the check crops (`check_crops`: the bundle's first calibration crops, else seeded noise), computed when
the graph was made: any runtime built from the pack must reproduce them within its tolerance, an
agreement check with the eager model that needs no torch. int8 packs (made from the fp32 one, cached by
cropray.fastpath.graph_cache) also record their quantization settings under "int8".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

GRAPH_FILE, GRAPH_META = "graph.onnx", "graph.json"
CHECK_CROPS = 32  # the agreement check: ~10-30 ms of ONNX Runtime on one thread
PRE_KEYS = {"flatten", "flatten_window", "row_center", "compress", "stride"}


class GraphError(ValueError):
    """A pack whose files or settings are not what cropray writes."""


@dataclass(frozen=True)
class GraphPack:
    graph: bytes  # ONNX network, input "z" (B,1,H,W) normalised -> output "score" (B,)
    meta: dict  # {"preprocess": {...} | None, "check_scores": [K floats], "input_shape": [H, W], ...}

    @property
    def preprocess(self) -> dict | None:
        return self.meta.get("preprocess")

    @property
    def check_scores(self) -> np.ndarray:
        return np.asarray(self.meta["check_scores"], np.float32)  # (K,)

    def files(self) -> dict[str, bytes]:
        return {GRAPH_FILE: self.graph, GRAPH_META: json.dumps(self.meta, sort_keys=True).encode()}

    @classmethod
    def from_files(cls, blobs: dict[str, bytes], where: str) -> GraphPack:
        """A pack from its two files' bytes (hashes already checked by the caller); GraphError naming
        `where` when graph.json is not what cropray writes."""
        try:
            meta = json.loads(blobs[GRAPH_META])
        except (KeyError, ValueError) as e:
            raise GraphError(f"{where}/{GRAPH_META}: not readable JSON ({e})") from None
        if not isinstance(meta, dict):
            raise GraphError(f"{where}/{GRAPH_META}: must be a JSON object")
        pre = meta.get("preprocess")
        if pre is not None and (not isinstance(pre, dict) or set(pre) != PRE_KEYS):
            raise GraphError(f"{where}/{GRAPH_META}: preprocess must be null or hold {sorted(PRE_KEYS)}")
        prior = meta.get("prior")
        if prior is not None and not (isinstance(prior, dict) and set(prior) == {"scale", "offset", "widths"}
                                      and all(_finite(prior[k]) for k in ("scale", "offset"))
                                      and isinstance(prior["widths"], list) and prior["widths"]
                                      and all(isinstance(w, int) and w > 0 for w in prior["widths"])):
            raise GraphError(f"{where}/{GRAPH_META}: prior must be null or {{scale, offset, widths}}")
        cs = meta.get("check_scores")
        if not (isinstance(cs, list) and cs and all(_finite(v) for v in cs)):
            raise GraphError(f"{where}/{GRAPH_META}: check_scores must be a non-empty list of finite numbers")
        shape = meta.get("input_shape")
        if not (isinstance(shape, list) and len(shape) == 2 and all(isinstance(v, int) and v > 0 for v in shape)):
            raise GraphError(f"{where}/{GRAPH_META}: input_shape must be [H, W]")
        if not blobs.get(GRAPH_FILE):
            raise GraphError(f"{where}/{GRAPH_FILE}: missing or empty")
        return cls(blobs[GRAPH_FILE], meta)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_crops(calibration: np.ndarray | None, input_shape) -> np.ndarray:
    """(K,1,H,W) float32 raw crops of the agreement check: the first calibration crops, else seeded
    chi2(2)/2 noise (what a raw power spectrogram of noise looks like)."""
    if calibration is not None and len(calibration):
        return np.ascontiguousarray(calibration[:CHECK_CROPS], dtype=np.float32)
    h, w = (int(v) for v in input_shape)
    return np.random.default_rng(0).exponential(size=(CHECK_CROPS, 1, h, w)).astype(np.float32)
