"""`cropray suggest MODEL ARCHIVE --n K --out QUEUE`: the K crops most worth labelling next."""

from __future__ import annotations

import argparse
import sys

from cropray.cli._common import EXIT_ATTENTION, EXIT_OK, add_json_flag, emit, positive_int

EPILOG = """\
example:
  cropray suggest model/ crops/ --n 50 --out queue.parquet --labels labels/
  cropray label queue.parquet --out labels/          # answer them in the browser
  cropray train labels/ --out model2/                # and train again

Every crop of ARCHIVE is scored through the same Ray Data pipeline as `cropray score` (bounded memory,
any archive size); K crops are picked for four reasons: top_score (the highest scores),
disagrees_with_track (the model and the label-free track statistic disagree, both sure), uncertain
(closest to the calibrated threshold) and diverse (a uniform sample of the archive), each spread
over the model's features (k-center greedy) and away from crops already in LABELS.
QUEUE is one Parquet file: rank, crop_id, crop, score, reason, source_file, ...
exit status: 0 done, 1 rows quarantined or files failed while scoring, 2 bad usage or input."""


def register(sub) -> None:
    p = sub.add_parser("suggest", help="pick the crops most worth labelling next (uncertain, diverse, disagreements)",
                       description="Pick the K crops of an archive whose labels would most improve the model.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="model bundle directory (from `cropray train --out`)")
    p.add_argument("archive", metavar="ARCHIVE", help="crop archive: Parquet file, directory, glob or URI")
    p.add_argument("--n", type=positive_int("--n"), required=True, metavar="K", help="crops to pick")
    p.add_argument("--out", required=True, metavar="QUEUE", help="queue file to write (Parquet)")
    p.add_argument("--labels", default=None, metavar="LABELS",
                   help="labelled set (file, directory or glob): its crop_ids are skipped")
    p.add_argument("--scores", default=None, metavar="DIR",
                   help="keep the archive's scores in DIR (default: a temporary directory, removed)")
    p.add_argument("--shares", default=None, metavar="R=F,...",
                   help="share of K per reason, e.g. uncertain=0.5,diverse=0.5 (default top_score=0.1,"
                        "disagrees_with_track=0.2,uncertain=0.4,diverse=0.3)")
    p.add_argument("--seed", type=int, default=0, help="seed of the uniform (diverse) sample (default 0)")
    p.add_argument("--address", default=None, help="Ray cluster to join (default: embedded local Ray)")
    p.add_argument("--actors", default=None, metavar="N|MIN,MAX", help="scoring actor pool size")
    p.add_argument("--overwrite", action="store_true", help="replace an existing QUEUE")
    add_json_flag(p)
    p.set_defaults(func=run)


def parse_shares(text: str | None) -> dict | None:
    from cropray.errors import ConfigError

    if not text:
        return None
    out = {}
    for part in text.split(","):
        name, _, val = part.partition("=")
        try:
            out[name.strip()] = float(val)
        except ValueError:
            raise ConfigError(f"--shares: {part!r} is not REASON=FRACTION") from None
    return out


def human(s: dict) -> str:
    picked = ", ".join(f"{r} {n}" for r, n in s["picked"].items())
    lines = [f"suggested {s['n']} of {s['asked']} crops in {s['wall_s']:.1f} s -> {s['queue']}",
             f"  model      {s['model_id']} (threshold {s['threshold']:.4g})",
             f"  reasons    {picked}",
             f"  archive    {s['rows_scored']:,} scored, {s['rows_quarantined']:,} quarantined, "
             f"{s['labelled_skipped']:,} already labelled (of {s['labels_given']:,} labels given) skipped",
             f"  next       cropray label {s['queue']} --out LABELS"]
    if s["files_failed"]:
        lines.insert(4, f"  FAILED     {s['files_failed']} files could not be read (see the score manifest)")
    return "\n".join(lines)


def run(args) -> int:
    from cropray.scoring.config import parse_actors
    from cropray.suggest.config import SuggestConfig
    from cropray.suggest.job import suggest

    shares = parse_shares(args.shares)
    cfg = SuggestConfig(n=args.n, seed=args.seed, **({"shares": shares} if shares else {}))
    kw = {"address": args.address, "actors": parse_actors(args.actors)}
    s = suggest(args.model, args.archive, args.out, cfg, labels=args.labels, scores=args.scores,
                overwrite=args.overwrite, score_kwargs=kw, log=lambda m: print(f"cropray suggest: {m}", file=sys.stderr))
    emit(s, human(s), args.json)
    return EXIT_ATTENTION if s["rows_quarantined"] or s["files_failed"] else EXIT_OK
