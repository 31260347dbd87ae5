"""Track searches beyond straight lines, on the shift benchmark's test sets (issue 11): measured, dropped.

    python benchmarks/track_search.py                 # label-free searches, ~1 min on one core
    python benchmarks/track_search.py --learned --archive-dir /tmp/f_shift   # + the learned prior, ~6 min

The shift benchmark (shift_quality.py) found the learned models' misses on curved, wobbling and
wandering tracks, and named a non-straight track search as the next lever. This measures the search
alone, without labels or training, on the same shifted test sets (SNR 6-60 and the faint SNR 4-12):

  straight   the Taylor-tree de-Doppler SNR (`dedoppler`, cropray.models.taylor)
  path       first-order Viterbi (cropray.models.viterbi.path_snr): any path moving <= 1 channel/row
  smooth     second-order Viterbi (smooth_path_snr): drift changes <= 1 channel/block per block
  + combos   each search beside the straight one, combined by a logistic fit on a *separate* shifted
             set (3,000 crops, another seed): what a learned two-term prior could reach at most

Each row: ROC-AUC, recall at 1% FPR (threshold from the test negatives), faint ROC-AUC, recall by
track morphology, and seconds per 1,000 crops on this machine's torch threads.

`--learned`: the shift benchmark's `inject` row at 50 labels (every setting pinned as there) for the
shallow CNN with the smooth search as a second learned prior term, `scale2 * (smooth - offset2)`
(scale2 starts at 0, offset2 at the statistic's 95th percentile on noise-only label-setting crops),
beside the plain shallow CNN + straight prior, same seed, same archive. The searches live here, not
in the package: by these figures they do not earn a place in the models (README, "What bounds the
targets"). Each run first checks both searches against brute force on small random crops.

Why a Viterbi search: the continuous-wave searches of gravitational-wave astronomy meet wandering
narrowband lines in spectrograms and answer with it (SOAP, Bayley et al. 2019, Phys. Rev. D 100,
023006): the best sum of power along any path moving at most a few channels per time step, in one
pass over the rows.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from shift_quality import shifted  # noqa: E402  (the benchmark's own shifted generator setting)

from cropray.evaluate.metrics import binary_metrics  # noqa: E402
from cropray.synth import generate  # noqa: E402

# Below any reachable path sum on a robustly normalised crop, finite so ONNX, bf16 and inductor agree.
_FLOOR = -1.0e4


def block_rows(z: torch.Tensor, rows: int) -> torch.Tensor:
    """(B, T, W) -> (B, T // rows, W): sums of `rows` consecutive rows / sqrt(rows) (a tail is dropped)."""
    if rows == 1:
        return z
    b, t, w = z.shape
    n = t // rows
    return z[:, :n * rows].reshape(b, n, rows, w).sum(dim=2) / math.sqrt(rows)


def viterbi_max(zb: torch.Tensor, step: int) -> torch.Tensor:
    """(B, R, W) unit-noise rows -> (B,) best sum over paths moving <= `step` channels per row."""
    s = zb[:, 0]  # (B, W) best path sum ending at each channel of row 0
    width = s.shape[-1]
    for r in range(1, zb.shape[1]):  # R - 1 steps, unrolled when traced (R is 16-64 here)
        p = F.pad(s, (step, step), value=_FLOOR)  # (B, W + 2 step)
        m = p[:, 0:width]
        for j in range(1, 2 * step + 1):
            m = torch.maximum(m, p[:, j:j + width])  # (B, W) best predecessor within +-step
        s = zb[:, r] + m
    return s.amax(dim=-1)


def path_snr(z: torch.Tensor, widths=(1, 2), rows: int = 2, step: int = 2) -> torch.Tensor:
    """(B, T, W) robustly normalised crops -> (B,) best wandering-track score (see the module doc)."""
    zb = block_rows(z, rows)  # (B, R, W)
    n_blocks = zb.shape[1]
    best = None
    for k in widths:
        zk = zb
        if k > 1:  # k-channel boxcar, zeros past the right edge, / sqrt(k) keeps unit noise
            padded = F.pad(zb, (0, k - 1))
            zk = sum(padded[..., j:j + zb.shape[-1]] for j in range(k)) / math.sqrt(k)  # (B, R, W)
        bk = viterbi_max(zk, step)
        best = bk if best is None else torch.maximum(best, bk)
    return best / math.sqrt(n_blocks)


def smooth_path_snr(z: torch.Tensor, widths=(1, 2, 3), rows: int = 4, vmax: int = 4, dv: int = 1) -> torch.Tensor:
    """(B, T, W) robustly normalised crops -> (B,) best *smooth* track score: a second-order Viterbi.

    The state is (channel, drift): drift v in [-vmax, vmax] channels per block of `rows` rows (the
    defaults: up to one channel per row, the straight search's bound), changing by at most `dv` per
    block. Accelerating (curved) and oscillating (wobbling) tracks are smooth: this family holds them
    with far fewer paths than `path_snr`'s, so noise collects less of the maximum-over-paths bias.
    """
    zb = block_rows(z, rows)  # (B, R, W)
    b, n_blocks, width = zb.shape
    n_v = 2 * vmax + 1
    # out[b, i, f] = M[b, i, f - v_i]: one gather from M padded by vmax floor channels on each side
    f = torch.arange(width, device=z.device)
    v = torch.arange(-vmax, vmax + 1, device=z.device)
    idx = (f[None, :] - v[:, None] + vmax).expand(b, n_v, width)  # (B, V, W) into (B, V, W + 2 vmax)
    best = None
    for k in widths:
        zk = zb
        if k > 1:
            padded = F.pad(zb, (0, k - 1))
            zk = sum(padded[..., j:j + width] for j in range(k)) / math.sqrt(k)  # (B, R, W)
        s = zk[:, 0, None].expand(b, n_v, width)  # (B, V, W): a path may start at any drift
        for r in range(1, n_blocks):
            sp = F.pad(s, (0, 0, dv, dv), value=_FLOOR)  # (B, V + 2 dv, W) along drift
            m = sp[:, 0:n_v]
            for j in range(1, 2 * dv + 1):
                m = torch.maximum(m, sp[:, j:j + n_v])  # best predecessor drift within +-dv
            m = torch.gather(F.pad(m, (vmax, vmax), value=_FLOOR), 2, idx)  # moved by its drift
            s = m + zk[:, r, None]
        bk = s.amax(dim=(1, 2))
        best = bk if best is None else torch.maximum(best, bk)
    return best / math.sqrt(n_blocks)


def _brute_path(z: np.ndarray, step: int) -> float:
    """Max over every path inside a small (T, W) crop moving <= step channels per row."""
    t, w = z.shape
    best = -np.inf
    for f0 in range(w):
        for moves in itertools.product(range(-step, step + 1), repeat=t - 1):
            f, s = f0, z[0, f0]
            for r, m in enumerate(moves, start=1):
                f += m
                if not 0 <= f < w:
                    break
                s += z[r, f]
            else:
                best = max(best, s)
    return best


def _brute_smooth(z: np.ndarray, vmax: int, dv: int) -> float:
    """Max over every (start channel, start drift, drift changes <= dv, |drift| <= vmax) path."""
    t, w = z.shape
    best = -np.inf
    for f0 in range(w):
        for v0 in range(-vmax, vmax + 1):
            for dvs in itertools.product(range(-dv, dv + 1), repeat=t - 1):
                f, v, s, ok = f0, v0, z[0, f0], True
                for r, d in enumerate(dvs, start=1):
                    v += d
                    f += v
                    if abs(v) > vmax or not 0 <= f < w:
                        ok = False
                        break
                    s += z[r, f]
                if ok:
                    best = max(best, s)
    return best


def self_check() -> None:
    """Both searches equal brute force on small random crops (the instrument, checked before use)."""
    rng = np.random.default_rng(0)
    for _ in range(4):
        z = rng.standard_normal((4, 7)).astype(np.float32)
        zt = torch.from_numpy(z)[None]
        for step in (1, 2):
            got = path_snr(zt, (1,), rows=1, step=step).item() * 2
            assert abs(got - _brute_path(z, step)) < 1e-4, (step, got)
        for vmax, dv in ((1, 1), (2, 1)):
            got = smooth_path_snr(zt, (1,), rows=1, vmax=vmax, dv=dv).item() * 2
            assert abs(got - _brute_smooth(z, vmax, dv)) < 1e-4, (vmax, dv, got)


def searches() -> dict:
    from cropray.models.taylor import track_snr

    return {"straight": lambda z: track_snr(z, (1, 2)),
            "path r1 step1": lambda z: path_snr(z, (1, 2), rows=1, step=1),
            "path r4 step3": lambda z: path_snr(z, (1, 2, 3), rows=4, step=3),
            "smooth r4 v4 dv1": lambda z: smooth_path_snr(z),
            "smooth r8 v8 dv2": lambda z: smooth_path_snr(z, rows=8, vmax=8, dv=2)}


def normalised(b):
    """(N, T, W) crops through the `dedoppler` preprocessing (RobustNorm, row centring, asinh)."""
    import torch

    from cropray.models import build_model

    pre = build_model("dedoppler").preprocess
    with torch.inference_mode():
        return torch.cat([pre(torch.from_numpy(b.crops[i:i + 512, None]))[:, 0] for i in range(0, len(b), 512)])


def row(name: str, test, s_test: np.ndarray, faint, s_faint: np.ndarray, sec_per_k: float) -> dict:
    m = binary_metrics(test.label, s_test, 0.0, n_boot=500, seed=0)["roc_auc"]
    neg = np.sort(s_test[test.label == 0])
    thr = neg[int(np.ceil(0.99 * len(neg))) - 1]
    hit = s_test > thr
    kind = np.char.replace(test.kind.astype(str), "+rfi", "")
    by_track = {k.replace("narrowband_", "").replace("narrowband", "straight/none"):
                round(float(hit[(test.label == 1) & (kind == k)].mean()), 3) for k in np.unique(kind[test.label == 1])}
    return {"search": name, "auc": round(m["value"], 4), "auc_lo": round(m["lo"], 4), "auc_hi": round(m["hi"], 4),
            "recall_1pct": round(float(hit[test.label == 1].mean()), 3),
            "faint_auc": round(binary_metrics(faint.label, s_faint, 0.0, n_boot=0)["roc_auc"]["value"], 4),
            "recall_by_track": by_track, "s_per_1000": round(sec_per_k, 3)}


def learned(argv: list[str]) -> int:
    """The shift benchmark's 50-label `inject` row for shallow_cnn + smooth prior and plain shallow_cnn."""
    import shift_quality
    from shift_quality import LABEL_CFG
    from torch import nn

    from cropray.models import policy
    from cropray.models._registry import register_model
    from cropray.models.cnn import ShallowCNN

    neg = generate(1500, dataclasses.replace(LABEL_CFG, positive_fraction=0.0), seed=123)
    with torch.inference_mode():  # normalised(): the CNN's own preprocessing with its track prior on
        offset = float(np.percentile(smooth_path_snr(normalised(neg)).numpy(), 95))
    print(f"smooth search on noise-only crops: 95th percentile {offset:.2f} (the second term's offset)", flush=True)

    @register_model(dataclasses.replace(policy.arch_spec("shallow_cnn"), name="shallow_cnn_smooth", module=None,
                                        reference=False))
    class ShallowCNNSmooth(ShallowCNN):
        """shallow_cnn + straight prior + scale2 * (smooth_path_snr - offset2), both learned."""

        def __init__(self, **kw):
            super().__init__(**kw)
            self.scale2 = nn.Parameter(torch.tensor(0.0))
            self.offset2 = nn.Parameter(torch.tensor(offset))

        def logits_normalised(self, z):
            with torch.no_grad():  # the statistic has no parameters; only scale2/offset2 learn
                s = smooth_path_snr(z[:, 0].float())  # (B,)
            return super().logits_normalised(z) + self.scale2 * (s - self.offset2)

    rc = 0
    for arch in ("shallow_cnn_smooth", "shallow_cnn"):
        rc |= shift_quality.main(["--labels", "50", "--methods", "inject", "--arch", arch, "--no-baselines",
                                  "--tag", f"track_search_{arch}", *argv])
    return rc


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--test", type=int, default=2000)
    p.add_argument("--faint", type=int, default=1000)
    p.add_argument("--fit", type=int, default=3000, help="crops of the separate set the combinations are fitted on")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default=None)
    p.add_argument("--learned", action="store_true",
                   help="run the learned-prior rows instead; other arguments go to shift_quality.py "
                        "(e.g. --archive-dir, --jsonl)")
    args, rest = p.parse_known_args(argv)
    from sklearn.linear_model import LogisticRegression

    torch.set_num_threads(args.threads)
    self_check()
    if args.learned:
        return learned(rest)
    if rest:
        p.error(f"unrecognized arguments: {' '.join(rest)}")
    test = generate(args.test, shifted((6.0, 60.0)), seed=9)  # the shift benchmark's test sets
    faint = generate(args.faint, shifted((4.0, 12.0)), seed=10)
    fit_set = generate(args.fit, shifted((4.0, 60.0)), seed=99)
    zt, zf, zfit = normalised(test), normalised(faint), normalised(fit_set)
    rows, stats = [], {}
    with torch.inference_mode():
        for name, fn in searches().items():
            fn(zt[:64])  # warm-up: the first call pays one-off allocations
            t0 = time.perf_counter()
            st = fn(zt).numpy()
            sec = (time.perf_counter() - t0) * 1000 / len(zt)
            stats[name] = (st, fn(zf).numpy(), fn(zfit).numpy())
            rows.append(row(name, test, st, faint, stats[name][1], sec))
        base = stats["straight"]
        for name, (st, sf, sfit) in stats.items():
            if name == "straight":
                continue
            lr = LogisticRegression().fit(np.stack([base[2], sfit], 1), fit_set.label)
            r = row(f"straight + {name}", test, lr.decision_function(np.stack([base[0], st], 1)), faint,
                    lr.decision_function(np.stack([base[1], sf], 1)), float("nan"))
            r["weights"] = [round(float(w), 3) for w in lr.coef_[0]]
            rows.append(r)
    print("| search | ROC-AUC [95%] | recall@1%FPR | faint AUC | recall by track | s / 1k crops |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        tracks = ", ".join(f"{k} {v:.2f}" for k, v in r["recall_by_track"].items())
        print(f"| {r['search']} | {r['auc']:.4f} [{r['auc_lo']:.3f}, {r['auc_hi']:.3f}] | {r['recall_1pct']:.3f} | "
              f"{r['faint_auc']:.4f} | {tracks} | {r['s_per_1000']:.3f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
