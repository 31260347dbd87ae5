"""Profile of the label-free physics path (`dedoppler`, the CNNs' track prior): torch vs numpy, by stage.

    python research/profile_dedoppler.py --n 4096 --batch 256 --repeats 5
    python research/profile_dedoppler.py --smoke-test      # 256 crops, 1 repeat: checks that it runs

Stages, each timed alone on the same synthetic crops (`cropray.synth`, 64x64) in batches of --batch:
flatten (per-channel time median, running median across frequency, divide), row centring (row
medians), global median/MAD + standardise, asinh, tree input (pads, flip, layout), Taylor tree,
boxcar widths + max. "torch" is the model's own code (cropray.models.preprocess / taylor), "numpy"
cropray.models.physics_np (which the model itself runs for eager CPU inference; `taylor.torch_code()`
keeps it on torch here). Then end to end (raw crops -> scores): crops/s on 1 thread and on 2
(torch: 2 intra-op threads; numpy: `threads=2`, chunks of 64 crops on 2 Python threads, numpy
releases the GIL),
and the new/old ratio. Prints the largest score difference too (the two must agree within 1e-5).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from cropray.models import build_model
from cropray.models import physics_np as P
from cropray.models.preprocess import MAD_TO_SIGMA, fast_asinh, running_median, subsample_stride
from cropray.models.taylor import taylor_tree, torch_code
from cropray.report.table import fmt_table
from cropray.synth import generate

WIDTHS = (1, 2)


def torch_stages(widths) -> dict:
    """{stage: fn(state) -> state}, the steps of Dedoppler.forward in torch, in order."""
    def flatten(s):
        x = s["x"]
        base = running_median(x.median(dim=2).values, 15)  # (B, 1, W)
        floor = 1e-3 * base.abs().mean(dim=-1, keepdim=True) + 1e-30
        return {"x": x / torch.maximum(base, floor).unsqueeze(2)}

    def row_center(s):
        x = s["x"]
        return {"x": x - x.median(dim=3, keepdim=True).values}

    def standardise(s):
        x = s["x"]
        flat = x.reshape(len(x), -1)
        sub = flat[:, ::subsample_stride(flat.shape[1], x.shape[-1])]
        med = sub.median(dim=1, keepdim=True).values
        mad = (sub - med).abs().median(dim=1, keepdim=True).values
        floor = 1e-6 * sub.abs().mean(dim=1, keepdim=True) + 1e-30
        return {"x": ((flat - med) / torch.maximum(MAD_TO_SIGMA * mad, floor)).reshape(x.shape)}

    def asinh(s):
        return {"x": fast_asinh(s["x"])}

    def tree_input(s):
        z = s["x"][:, 0]
        t = z.shape[1]
        t2 = 1 << max(0, math.ceil(math.log2(t)))
        return {"zz": F.pad(torch.cat([z, z.flip(-1)]), (t2 // 4, 0, 0, t2 - t)), "b": len(z), "t": t}

    def tree(s):
        return {**s, "sums": taylor_tree(s["zz"])}

    def boxcar(s):  # the rest of taylor.track_snr
        sums, best = s["sums"], None
        for k in widths:
            sk = sums
            if k > 1:
                padded = F.pad(sums, (0, k - 1))
                sk = sum(padded[..., j:j + sums.shape[-1]] for j in range(1, k)) + sums
            bk = sk.amax(dim=(1, 2)) / math.sqrt(k)
            best = bk if best is None else torch.maximum(best, bk)
        return {"y": best.reshape(2, s["b"]).amax(dim=0) / math.sqrt(s["t"])}

    return {"flatten": flatten, "row centring": row_center, "median/MAD + standardise": standardise,
            "asinh": asinh, "tree input (pad, flip, layout)": tree_input, "Taylor tree": tree,
            "boxcar widths + max": boxcar}


def numpy_stages(widths) -> dict:
    """{stage: fn(state) -> state}, the steps of physics_np.dedoppler_score_np, in order."""
    def tree_input(s):
        return {"plan": P.stage_tracks(s["x"], widths), "t": s["x"].shape[1]}

    def tree(s):
        s["plan"].run()
        return s

    return {"flatten": lambda s: {"x": P.flatten_np(s["x"], 15)},
            "row centring": lambda s: {"x": P.row_center_np(s["x"])},
            "median/MAD + standardise": lambda s: {"x": P.standardise_np(s["x"], P.subsample_stride(
                s["x"].shape[1] * s["x"].shape[2], s["x"].shape[2]))},
            "asinh": lambda s: {"x": P.asinh_np(s["x"])},
            "tree input (pad, flip, layout)": tree_input, "Taylor tree": tree,
            "boxcar widths + max": lambda s: {"y": P.best_track(s["plan"], widths, s["t"])}}


def time_stages(stages: dict, batches: list, repeats: int) -> dict[str, float]:
    """{stage: CPU seconds of this thread for all batches}, median of repeats; each stage timed on its
    own inputs. Thread CPU time, not wall: on a shared machine wall time mostly measures the others."""
    totals = {k: [] for k in stages}
    for _ in range(repeats):
        acc = dict.fromkeys(stages, 0.0)
        for xb in batches:
            s = {"x": xb}
            for name, fn in stages.items():
                t0 = time.thread_time()
                s = fn(s)
                acc[name] += time.thread_time() - t0
        for k, v in acc.items():
            totals[k].append(v)
    return {k: statistics.median(v) for k, v in totals.items()}


def time_e2e(fn, repeats: int) -> tuple[float, float]:
    """(wall seconds, process CPU seconds), medians of repeats."""
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=4096, help="synthetic crops (default 4096)")
    ap.add_argument("--batch", type=int, default=256, help="crops per call (default 256)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--smoke-test", action="store_true", help="256 crops, one repeat (seconds)")
    args = ap.parse_args(argv)
    if args.smoke_test:
        args.n, args.batch, args.repeats = 256, 128, 1
    x = np.ascontiguousarray(generate(args.n, seed=7).crops[:, None], dtype=np.float32)  # (N, 1, 64, 64)
    model = build_model("dedoppler").eval()
    hp = model.hparams
    widths = tuple(hp["widths"])
    nb = [x[i:i + args.batch] for i in range(0, len(x), args.batch)]
    tb = [torch.from_numpy(b) for b in nb]
    torch.set_num_threads(1)
    with torch.no_grad(), torch_code():  # the model's torch code (no numpy route for eager CPU inference)
        old = time_stages(torch_stages(widths), tb, args.repeats)
        ref = torch.cat([model(b) for b in tb]).numpy()
    # numpy works in chunks of P.CHUNK crops (its tree buffers stay in cache), as dedoppler_score_np
    chunks = [b[i:i + P.CHUNK, 0] for b in nb for i in range(0, len(b), P.CHUNK)]
    new = time_stages(numpy_stages(widths), chunks, args.repeats)
    got = np.concatenate([P.dedoppler_score_np(b, hp) for b in nb])
    k = 1000.0 / len(x)
    rows = [[name, f"{1e3 * old[name] * k:.1f}", f"{old[name] / sum(old.values()):.0%}",
             f"{1e3 * new[name] * k:.1f}", f"{new[name] / sum(new.values()):.0%}"] for name in old]
    rows.append(["total", f"{1e3 * sum(old.values()) * k:.1f}", "100%", f"{1e3 * sum(new.values()) * k:.1f}", "100%"])
    print(f"{len(x)} crops 64x64, batches of {args.batch}, 1 thread, thread CPU time, median of {args.repeats}")
    print(fmt_table(rows, ["stage", "torch ms/1k crops", "share", "numpy ms/1k crops", "share"]))

    e2e = []
    for threads in (1, 2):
        torch.set_num_threads(threads)

        def run_torch():
            with torch.no_grad(), torch_code():
                for b in tb:
                    model(b)

        def run_np(threads=threads):
            for b in nb:
                P.dedoppler_score_np(b, hp, threads=threads)  # chunks of 64 over `threads` threads

        (w_old, c_old), (w_new, c_new) = time_e2e(run_torch, args.repeats), time_e2e(run_np, args.repeats)
        e2e.append([threads, f"{len(x) / w_old:,.0f}", f"{len(x) / w_new:,.0f}", f"{w_old / w_new:.1f}x",
                    f"{len(x) / c_old:,.0f}", f"{len(x) / c_new:,.0f}", f"{c_old / c_new:.1f}x"])
    print()
    print(fmt_table(e2e, ["threads", "torch crops/s", "numpy crops/s", "new/old",
                          "torch crops/CPU-s", "numpy crops/CPU-s", "new/old (CPU)"]))
    print("crops/s: wall clock (what a user sees; on a loaded machine mostly the others' load);"
          " crops/CPU-s: per second of this process's CPU time, all threads together")
    print(f"\nmax |score difference| numpy vs torch: {np.abs(got - ref).max():.2e} "
          f"(scores {ref.min():.2f}..{ref.max():.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
