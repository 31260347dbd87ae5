"""The fp32 network exported to ONNX as a `GraphPack` (torch): at bundle-save time, or on first use of
an old bundle that does not carry one.

The model is copied, its RobustNorm moved out into the numpy copy (ONNX has no Median operator;
preprocess.py checks the copy agrees), and the rest exported into memory with a dynamic batch axis. A
CNN's track prior stays outside the graph too: the graph computes the CNN's logit term, and the runtime
adds scale * (track SNR - offset) from physics_np and takes the sigmoid (measured 1.2x the whole graph
with the Taylor tree inside, shallow CNN, 1 thread, equal within 2e-7). The pack records the fp32 eager scores of the check
crops (graph_cache.check_crops) so that every later build is checked without torch; the export itself
is refused unless ONNX Runtime reproduces those scores within TOLERANCE["fp32"].
"""

from __future__ import annotations

import copy
import io
import warnings

import numpy as np
import torch
from torch import nn

from cropray.bundle_graph import GraphPack, check_crops
from cropray.fastpath.ort import INPUT, OUTPUT, agreement, available
from cropray.fastpath.preprocess import is_robust_norm, split_preprocess
from cropray.fastpath.specs import TOLERANCE
from cropray.models.physics_np import subsample_stride


def export_network(net: nn.Module, example: torch.Tensor) -> bytes:
    """The network (normalised (B,1,H,W) -> (B,)) as ONNX bytes, batch axis dynamic. The TorchScript
    exporter (dynamo=False) takes ~1 s here where the dynamo one takes 5-10 s, and translates the Taylor
    tree's pad/reshape skew exactly; the dynamo exporter is the fallback where the old one is gone."""
    buf = io.BytesIO()
    kw = dict(input_names=[INPUT], output_names=[OUTPUT], dynamic_axes={INPUT: {0: "b"}, OUTPUT: {0: "b"}})
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's deprecation notes, not actionable here
        try:
            torch.onnx.export(net, (example,), buf, dynamo=False, **kw)
        except TypeError:  # a torch without the legacy exporter
            buf = io.BytesIO()
            torch.onnx.export(net, (example,), buf, dynamo=True, **kw)
    return buf.getvalue()


def eager_scores(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """(B,) float32 fp32 eager scores of raw crops x (B,1,H,W): the reference."""
    with torch.inference_mode():
        return model(torch.from_numpy(np.ascontiguousarray(x, np.float32))).float().numpy().reshape(-1)


def make_pack(model: nn.Module, calibration: np.ndarray | None, input_shape) -> GraphPack:
    """The checked fp32 pack of `model`; RuntimeError when it cannot be exported or disagrees."""
    ok, why = available()
    if not ok:
        raise RuntimeError(why)
    from cropray.fastpath.ort import OrtScorer

    cx = check_crops(calibration, input_shape)  # (K,1,H,W)
    example = torch.from_numpy(cx)
    net = copy.deepcopy(model).eval()
    pre, how = split_preprocess(net, example)  # numpy RobustNorm in front; None: export the whole model
    if pre is None and is_robust_norm(getattr(net, "preprocess", None) or nn.Identity()):
        raise RuntimeError(f"preprocessing cannot leave the graph ({how}); ONNX has no Median operator")
    prior = None
    track = getattr(net, "track", None)
    if track is not None and hasattr(net, "logits_normalised"):  # a logit model: score = sigmoid(logit)
        # the track prior runs as numpy beside the graph (physics_np.track_snr_np: ~15-30x faster than the
        # Taylor tree's ~900 small ONNX nodes); the graph computes the CNN's own logit term only
        prior = {"scale": float(track.scale.detach()), "offset": float(track.offset.detach()),
                 "widths": [int(w) for w in track.widths]}
        net.track = None
        net.forward = net.logits_normalised  # exported scopes stay top-level: /features/..., /head/...
    cfg = None if pre is None else {**pre.cfg, "stride": subsample_stride(cx.shape[2] * cx.shape[3], cx.shape[3])}
    with torch.no_grad():
        z = example if pre is None else pre(example)  # (K,1,H,W) normalised
    graph = export_network(net, z[:8])
    ref = eager_scores(model, cx)
    pack = GraphPack(graph, {"preprocess": cfg, "prior": prior, "check_scores": [float(v) for v in ref],
                             "input_shape": [int(cx.shape[2]), int(cx.shape[3])],
                             "check": "calibration" if calibration is not None and len(calibration) else "noise",
                             "torch": torch.__version__})
    err = agreement(OrtScorer(graph, cfg, threads=torch.get_num_threads(), batch=len(cx), info={}, prior=prior),
                    cx, pack.check_scores)
    if not err <= TOLERANCE["fp32"]:
        raise RuntimeError(f"exported ONNX graph disagrees with the eager model by {err:.3g}")
    return pack
