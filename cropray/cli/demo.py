"""`cropray demo`: the README's main job, end to end on the embedded local Ray."""

from __future__ import annotations

import argparse

from cropray.cli._common import EXIT_ATTENTION, EXIT_OK, add_json_flag, emit, json_stdout

EXAMPLE = """example:
  cropray demo --workdir cropray-demo          # ~100k crops, a 6-trial sweep: a few minutes on 2 CPUs
  cropray demo --workdir /tmp/d --quick        # small sizes, about a minute
  cropray demo --workdir /tmp/d --quick --archive-crops 0   # labels only: no with-archive twin
  cropray demo --workdir /tmp/d --quick --target-fpr 0.01   # threshold from the archive's backgrounds
  then open cropray-demo/report.html
"""


def register(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="make data, tune, train, score an archive and write an HTML report, on a local Ray",
        description="Run the whole product once on synthetic data: synth -> tune (small) -> bundle -> "
        "score (Ray Data) -> eval on fresh crops -> one self-contained HTML report.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--workdir", default="cropray-demo", help="output directory (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty workdir")
    p.add_argument("--quick", action="store_true", help="small sizes (tests, first look)")
    for flag, default, h in (("labels", None, "labelled training crops (default 200)"),
                             ("eval-n", None, "fresh labelled evaluation crops (default 2000)"),
                             ("archive-n", None, "unlabelled crops to score (default 100000)"),
                             ("archive-files", None, "files of the unlabelled archive (default 8)"),
                             ("samples", None, "sweep trials (default 6)"),
                             ("epochs", None, "max epochs per trial (default 8)"),
                             ("archive-crops", None, "archive backgrounds drawn for injection into the retrain of "
                              "the best config, beside a labels-only twin (default 4000, --quick 1000; 0: off)"),
                             ("seed", None, "base seed (default 0)")):
        p.add_argument(f"--{flag}", type=int, default=default, help=h)
    p.add_argument("--target-fpr", type=float, default=None, metavar="F",
                   help="set the shipped threshold so that a fraction F (0 < F < 0.5, e.g. 0.01) of screened archive "
                   "backgrounds, held back from training, score above it (the archive-trained bundle and dedoppler; "
                   "default: Youden's J on the out-of-fold scores)")
    add_json_flag(p)
    p.set_defaults(func=run)


def _human(s: dict) -> str:
    ev, sc = s["eval"], s["score"]
    m = ev["metrics"]
    t = s["seconds"]
    return "\n".join([
        f"report    {s['report']}",
        f"model     {ev['model_id']}  ({s['bundle']})",
        f"quality   ROC-AUC {m['roc_auc']['value']:.3f} on {ev['n_labels']} fresh crops "
        f"(dedoppler baseline {s['baseline_dedoppler_auc']:.3f}); recall@1%FPR {m['recall_at_1pct_fpr']['value']:.3f}",
        *_archive_lines(s.get("comparison") or {}),
        f"scored    {sc['rows_scored']:,} crops, {sc['positives']:,} flagged as signal, "
        f"{sc['rows_quarantined']:,} quarantined, {sc.get('crops_per_s') or 0:,.0f} crops/s",
        f"scores    {s['paths']['scores']}",
        "time      " + ", ".join(f"{k} {v:.0f} s" for k, v in t.items()),
    ])


def _archive_lines(c: dict) -> list[str]:
    """The with/without-archive figures: CV on the labels, then ROC-AUC and recall@1%FPR on the fresh crops."""
    def fig(r: dict) -> str:
        v = {k: (r.get(k) or {}).get("value") for k in ("cv_roc_auc", "roc_auc", "recall_at_1pct_fpr")}
        return (f"CV {v['cv_roc_auc']:.3f}, fresh ROC-AUC {v['roc_auc']:.3f}, recall@1%FPR {v['recall_at_1pct_fpr']:.3f}"
                if None not in v.values() else "n/a")

    if not c:
        return []
    shipped = f"          shipped {c['chosen']}: {c['reason']}"
    if not c.get("with"):
        return [shipped.replace("          ", "choice    ", 1)]
    return [f"archive   with: {fig(c['with'])}", f"          without: {fig(c['without'])}",
            f"          dedoppler: {fig(c['dedoppler'])}", shipped]


def run(args) -> int:
    from cropray.demo import DemoConfig, run_demo

    over = {k: v for k, v in (("labels", args.labels), ("eval_n", args.eval_n), ("archive_n", args.archive_n),
                              ("archive_files", args.archive_files), ("samples", args.samples),
                              ("epochs", args.epochs), ("seed", args.seed), ("archive_crops", args.archive_crops),
                              ("target_fpr", args.target_fpr))
            if v is not None}
    make = DemoConfig.quick if args.quick else DemoConfig
    cfg = make(workdir=args.workdir, overwrite=args.overwrite, **over)
    with json_stdout(args.json) as out:  # --json: stdout holds the JSON only, whatever Ray prints
        s = run_demo(cfg)
        emit(s, _human(s), args.json, out)
    sc = s["score"]
    return EXIT_ATTENTION if (sc["rows_quarantined"] or sc["files_failed"]) else EXIT_OK
