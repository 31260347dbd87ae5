"""The Taylor-tree de-Doppler search, torch only: the `dedoppler` baseline and the CNNs' track prior use it.

A narrowband signal is a straight track in the (time, frequency) crop: constant channel, or drifting
at a constant rate (Doppler). `track_snr` is the best normalised power sum along any straight track;
`taylor_tree` computes every track sum of a crop in log2(T) passes. A leaf module (its only cropray
import is the torch-free numpy twin, physics_np), so models/dedoppler.py and models/track_prior.py share
it without importing each other.

Eager CPU inference (plain tensors, no autograd, not traced, compiled or exported) runs `track_snr`
with physics_np: the same float32 additions in the same order, so the same bits, at ~15x the speed
(the batch-last tree does a level in two strided adds, where the code below copies each level through
pads, stacks and reshapes). Everything else -- training with gradients, GPUs, torch.compile, the ONNX
export of the CNNs' track prior -- runs the torch code below, which stays the definition.
"""

from __future__ import annotations

import contextlib
import math
import threading

import torch
import torch.nn.functional as F

from cropray.models.physics_np import track_snr_np

_TORCH_ONLY = threading.local()


@contextlib.contextmanager
def torch_code():
    """Within this block (this thread), eager CPU inference runs the torch code too: the reference
    for tests and benchmarks that compare the two."""
    before = getattr(_TORCH_ONLY, "on", False)
    _TORCH_ONLY.on = True
    try:
        yield
    finally:
        _TORCH_ONLY.on = before


def eager_cpu(x: torch.Tensor) -> bool:
    """True where numpy may stand in for torch: a plain CPU tensor, no autograd, and nobody recording
    the ops (jit trace, ONNX export, dynamo/torch.export: their tensors are traced or fake), outside
    `torch_code()`."""
    return (not getattr(_TORCH_ONLY, "on", False) and type(x) is torch.Tensor and x.device.type == "cpu"
            and not x.requires_grad
            and not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export()
            and not torch.compiler.is_compiling())


def taylor_tree(z: torch.Tensor) -> torch.Tensor:
    """(N, T2, W) with T2 a power of two -> (N, T2, W): sums along tracks of drift d (rows) from start f.

    Out[:, d, f] = sum over rows r of z[:, r, f + c_d(r)], c_d a non-decreasing staircase from 0 to d
    channels (Taylor's straight-line approximation). Channels past the right edge count as zero.
    Each level combines pairs of row blocks: drift 2h and 2h+1 over 2n rows = the first half's drift-h
    track + the second half's drift-h track started h (or h+1) channels further right.
    """
    n_tracks, n_rows, width = z.shape
    a = z.unsqueeze(2)  # (N, blocks = T2, drifts = 1, W): one-row tracks
    n = 1
    while n < n_rows:
        nb = a.shape[1] // 2
        first = a[:, 0::2]  # (N, nb, n, W) first half of each new block
        sp = F.pad(a[:, 1::2], (0, n))  # (N, nb, n, L = W + n) second half, zeros past the edge
        # drift 2h: second half shifted by h channels; drift 2h + 1: by h + 1
        a = torch.stack([first + _skew(sp, width, 0), first + _skew(sp, width, 1)], dim=3)  # (N, nb, n, 2, W)
        a = a.reshape(n_tracks, nb, 2 * n, width)  # drift d = 2h + {0, 1}
        n *= 2
    return a[:, 0]


def _skew(sp: torch.Tensor, width: int, shift: int) -> torch.Tensor:
    """(N, nb, n, L = W + n) -> (N, nb, n, W) with out[..., h, f] = sp[..., h, f + h + shift], shift <= 1.

    Skew trick with pad + reshape only: flattened, row h starts at h * L, and h * L + h + f =
    h * (L + 1) + f, so re-cutting the flat rows at length L + 1 shifts row h by h. (An `as_strided`
    view does the same without the pad copy, but ONNX export mistranslates it and inductor copies anyway.)
    """
    b, nb, n, length = sp.shape
    flat = F.pad(sp.reshape(b, nb, n * length), (0, n + 1))  # (N, nb, n*L + n + 1)
    flat = flat[..., shift:shift + n * (length + 1)]  # (N, nb, n * (L + 1)) view
    return flat.reshape(b, nb, n, length + 1)[..., :width]


def track_snr(z: torch.Tensor, widths) -> torch.Tensor:
    """(B, T, W) robustly normalised crops -> (B,) best straight-track SNR (the `dedoppler` score)."""
    if z.dtype == torch.float32 and eager_cpu(z):  # bit-identical, faster (module docstring)
        return torch.from_numpy(track_snr_np(z.numpy(), widths, threads=torch.get_num_threads()))
    b, t, w = z.shape
    t2 = 1 << max(0, math.ceil(math.log2(t)))
    # Negative drifts are positive drifts of the frequency-flipped crop: one tree for both signs.
    # Extra rows are zeros (= the noise median). T2/4 zero channels on the left let a track start
    # up to T2/4 channels outside the crop and enter through the edge (through the right edge,
    # for the flipped half); tracks may leave through the far edge anyway.
    zz = F.pad(torch.cat([z, z.flip(-1)]), (t2 // 4, 0, 0, t2 - t))  # (2B, T2, W + T2/4)
    sums = taylor_tree(zz)  # (2B, T2 drifts, W + T2/4 starts)
    # The tree is linear and shift-equivariant along frequency, so a k-channel-wide track's sum is
    # the boxcar over k adjacent starts of the 1-channel sums: one tree serves every width.
    best = None
    for k in widths:
        sk = sums
        if k > 1:  # k - 1 shifted adds: avg_pool1d is ~10x slower on these short rows
            padded = F.pad(sums, (0, k - 1))  # (2B, T2, W' + k - 1), zeros past the edge
            sk = sum(padded[..., j:j + sums.shape[-1]] for j in range(1, k)) + sums  # (2B, T2, W')
        bk = sk.amax(dim=(1, 2)) / math.sqrt(k)  # (2B,) per-pixel-noise-normalised
        best = bk if best is None else torch.maximum(best, bk)
    best = best.reshape(2, b).amax(dim=0)  # (B,) best of positive and negative drifts
    return best / math.sqrt(t)
