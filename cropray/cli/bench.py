"""`cropray bench`: model forward, end-to-end scoring, the naive baseline and the label-free row, in one run."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from pathlib import Path

from cropray.cli._common import EXIT_OK, add_json_flag, emit, positive_int

EPILOG = """\
example:
  cropray bench --quick                         # ~1 minute: shallow_cnn, the CPU runtimes, small archive
  cropray bench --json > bench.json             # every architecture, runtime and batch size
  cropray bench --archs shallow_cnn --e2e-rows 100000 --memory-scale 1   # e2e / naive on 100k crops
  cropray bench --archs shallow_cnn --paths fold_cl,onnx_fp32,onnx_int8 --batch-sizes 64,128 --n 50000
  cropray bench --device cuda --archs shallow_cnn --e2e-rows 100000   # on a GPU: cuda_amp, an actor per GPU

Measures on a synthetic archive made on the spot: the matmul peak (fp32/bf16/int8 GFLOP/s),
in-process forward crops/s per architecture x runtime x batch size (GFLOP/s, fraction of peak, build
time), each runtime's accuracy vs fp32 eager (max |d score|, is_signal flips, held-out ROC-AUC),
`cropray score` end to end through Ray Data and the naive baseline (pandas + eager fp32 batch-32
loop), their ratios, the first scored block's latency, the driver's commit rate and peak memory, what
`auto` runs here, and the label-free dedoppler (forward, naive loop and end to end).
The machine may be shared: compare figures within one run (medians over --repeats).
runtimes: cpu: eager, fold_cl, onnx_fp32, onnx_int8, numpy (dedoppler only); cuda: eager, fold_cl, cuda_amp."""


def _csv(flag: str, cast=str):
    def parse(v: str):
        try:
            items = tuple(cast(x.strip()) for x in v.split(",") if x.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a comma-separated list, got {v!r}") from None
        if not items:
            raise argparse.ArgumentTypeError(f"{flag} must not be empty")
        return items

    return parse


def register(sub) -> None:
    p = sub.add_parser("bench", help="measure scoring speed and accuracy on this machine",
                       description="Benchmark cropray's runtimes, end-to-end scoring and a naive "
                                   "baseline on a synthetic archive.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small run: shallow_cnn, small archive (~1 minute)")
    p.add_argument("--device", default=None, choices=["cpu", "cuda"],
                   help="where the runtimes and the end-to-end actors run (default cpu; cuda: one actor per GPU)")
    p.add_argument("--e2e-rows", "--n", dest="n", type=positive_int("--e2e-rows"), default=None,
                   help="crops in the archive scored end to end and by the naive loop (default 100000; --quick 2048)")
    p.add_argument("--n-accuracy", type=positive_int("--n-accuracy"), default=None,
                   help="crops each path is compared with fp32 eager on (default 10000)")
    p.add_argument("--archs", type=_csv("--archs"), default=None, help="architectures (default: all)")
    p.add_argument("--paths", type=_csv("--paths"), default=None,
                   help="runtimes (default: every runtime of --device)")
    p.add_argument("--batch-sizes", type=_csv("--batch-sizes", int), default=None,
                   help="in-process batch sizes (default 32,128,512)")
    p.add_argument("--repeats", type=positive_int("--repeats"), default=None, help="timing repeats (default 5)")
    p.add_argument("--e2e-precision", default=None, choices=["auto", "fp32", "int8", "bf16"],
                   help="`cropray score --precision` of the end-to-end run (default auto; int8 cpu, bf16 cuda)")
    p.add_argument("--runner", default=None, choices=["auto", "ray", "local"],
                   help="`cropray score --runner` of the end-to-end runs (default auto: in-process up to 100,000 "
                        "rows, else Ray Data actors)")
    p.add_argument("--no-label-free", action="store_true", help="skip the label-free dedoppler row")
    p.add_argument("--memory-scale", type=positive_int("--memory-scale"), default=None,
                   help="also score an archive this many times larger to check peak memory (default 4; 1 = off)")
    p.add_argument("--threads", type=positive_int("--threads"), default=None, help="torch threads (default: all usable)")
    p.add_argument("--train-seconds", type=float, default=None, help="brief training per architecture (default 30)")
    p.add_argument("--workdir", default=None, help="where archives and outputs go (default: a temp dir, removed)")
    add_json_flag(p)
    p.set_defaults(func=run)


def config_from_args(args):
    from cropray.bench.config import BenchConfig

    over = {k: v for k, v in {
        "n": args.n, "n_accuracy": args.n_accuracy, "archs": args.archs, "paths": args.paths,
        "batch_sizes": args.batch_sizes, "repeats": args.repeats, "e2e_precision": args.e2e_precision,
        "memory_scale": args.memory_scale, "threads": args.threads, "train_seconds": args.train_seconds,
        "device": args.device, "runner": args.runner,
    }.items() if v is not None}
    if args.no_label_free:
        over["label_free"] = False
    return BenchConfig.quick_preset(**over) if args.quick else BenchConfig(**over)


def run(args) -> int:
    from cropray.bench import render, run_bench

    cfg = config_from_args(args)

    def log(msg: str) -> None:
        print(f"bench: {msg}", file=sys.stderr, flush=True)

    with _stdout_to_stderr():  # Ray/ONNX Runtime print to stdout: keep it for the summary/JSON
        if args.workdir:
            res = run_bench(cfg, Path(args.workdir), log=log)
        else:
            with tempfile.TemporaryDirectory(prefix="cropray-bench-") as tmp:
                res = run_bench(cfg, Path(tmp), log=log)
    emit(res, render(res), args.json)
    return EXIT_OK


@contextlib.contextmanager
def _stdout_to_stderr():
    """Point fd 1 (and sys.stdout) at stderr: native libraries and child processes write to fd 1."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
