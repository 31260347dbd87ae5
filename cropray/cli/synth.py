"""`cropray synth OUT --n N`: write a realistic synthetic crop archive."""

from __future__ import annotations

import argparse
import math
import sys

from cropray.cli._common import EXIT_OK, add_json_flag, emit, non_negative_int, positive_int
from cropray.synth.config import MAX_CROPS, MAX_FILES  # torch-free: the bounds of --n and --files
from cropray.synth.kinds import GROUPS, parse_kinds

EXAMPLE = """example:
  cropray synth /tmp/crops --n 20000 --files 4 --labeled --seed 1
  cropray synth /tmp/unlabeled --n 1000000 --dtype uint8            # 50 files of 20k crops
  cropray synth /tmp/hard --n 5000 --labeled --snr-range 3,20 --positive-fraction 0.1 --overwrite
  cropray synth /tmp/shift --n 5000 --labeled --kinds curved,wobble,wander,pulsed   # only these

Positives hold one narrowband signal (track: none, straight drift, curved = accelerating, wobble =
sinusoidal drift, wander = random-walk frequency; constant, scintillating or pulsed); negatives
hold noise alone, broadband impulses, bright pixels/blobs, wideband bumps or strong bandpass
structure. Noise levels span 6 decades. SNR is that of the de-drifted time-integrated spectrum.
Labelled archives add label, snr (NaN for negatives), kind and drift_rate_hz_s columns.
"""

DTYPES = ("float32", "float16", "uint8", "uint16")


def _fraction(v: str) -> float:
    try:
        p = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--positive-fraction must be a number, got {v!r}") from None
    if not 0.0 <= p <= 1.0:
        raise argparse.ArgumentTypeError(f"--positive-fraction must be in [0, 1], got {p}")
    return p


def _snr_range(v: str) -> tuple[float, float]:
    parts = v.split(",")
    try:
        lo, hi = (float(s) for s in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--snr-range must be LO,HI (two numbers), got {v!r}") from None
    if not (math.isfinite(hi) and 0 < lo <= hi):
        raise argparse.ArgumentTypeError(f"--snr-range needs 0 < LO <= HI, got {v!r}")
    return lo, hi


def _kinds(v: str) -> list[str]:
    from cropray.errors import ConfigError

    try:
        return parse_kinds(v)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _kinds_help() -> str:
    groups = "; ".join(f"{g}: {', '.join(names)}" for g, (_, names) in GROUPS.items())
    return ("comma-separated kinds to generate; each group named is restricted to the names given, the others "
            f"keep their defaults ({groups}; 'all' = every track). Default: today's mix, tracks none and "
            "straight only")


def register(sub) -> None:
    p = sub.add_parser(
        "synth",
        help="write a realistic synthetic archive of 64x64 spectrogram crops",
        description="Write a synthetic crop archive (Parquet, canonical tensor encoding) for demos, tests "
        "and benchmarks. Deterministic for a given --seed: row i is the same crop whatever --files is.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("out", metavar="OUT", help="output directory (must be empty unless --overwrite)")
    p.add_argument("--n", type=positive_int("--n", MAX_CROPS), required=True,
                   help=f"number of crops (1 to {MAX_CROPS:,})")
    p.add_argument("--labeled", action="store_true", help="add truth columns: label, snr, kind, drift_rate_hz_s")
    p.add_argument(
        "--files", type=positive_int("--files", MAX_FILES), default=None, metavar="K",
        help="number of Parquet files (default: one per 20,000 crops, which bounds memory)",
    )
    p.add_argument("--seed", type=non_negative_int("--seed"), default=0, metavar="S", help="random seed (default 0)")
    p.add_argument(
        "--positive-fraction", type=_fraction, default=0.5, metavar="P", help="fraction of crops with a signal (default 0.5)"
    )
    p.add_argument(
        "--snr-range", type=_snr_range, default=(5.0, 100.0), metavar="LO,HI",
        help="signal SNR range, drawn log-uniform (default 5,100)",
    )
    p.add_argument("--kinds", type=_kinds, default=None, metavar="K1,K2", help=_kinds_help())
    p.add_argument(
        "--dtype", choices=DTYPES, default="float32", metavar="D",
        help="crop storage dtype: float32 (default), float16, uint8 or uint16; integer dtypes rescale each crop to their range",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace the Parquet files of a non-empty OUT (other files are kept)"
    )
    add_json_flag(p)
    p.set_defaults(func=run, _parser=p)


def run(args) -> int:
    from cropray.synth import SynthConfig, synth_archive  # numpy-heavy import only when the command runs
    from cropray.synth.kinds import apply_kinds

    if args.files is not None and args.files > args.n:
        args._parser.error(f"--files ({args.files}) must not exceed --n ({args.n})")
    s = synth_archive(
        args.out,
        args.n,
        files=args.files,
        labeled=args.labeled,
        seed=args.seed,
        positive_fraction=args.positive_fraction,
        snr_range=args.snr_range,
        dtype=args.dtype,
        cfg=apply_kinds(SynthConfig(), args.kinds) if args.kinds else None,
        overwrite=args.overwrite,
        progress=sys.stderr.isatty() and args.n >= 20_000,
    )
    pos = f"{s['positives']:,} positives ({s['positives'] / s['rows']:.1%})" if args.labeled else "unlabelled"
    human = "\n".join([
        f"wrote     {s['out']}",
        f"rows      {s['rows']:,} in {s['files']} file(s), {pos}",
        f"crops     {s['crop_shape'][0]}x{s['crop_shape'][1]} {s['dtype']}, seed {s['seed']}",
        f"size      {s['bytes'] / 1e6:,.1f} MB on disk",
        f"speed     {s['crops_per_s']:,.0f} crops/s end to end ({s['generate_crops_per_s']:,.0f} generating) "
        f"in {s['seconds']:.1f} s",
    ])
    emit(s, human, args.json)
    return EXIT_OK
