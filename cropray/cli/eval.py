"""`cropray eval MODEL LABELS [--report DIR]`: metrics of a bundle on a labelled archive."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from cropray.cli._common import EXIT_ATTENTION, EXIT_OK, add_json_flag, emit, fmt_table

if TYPE_CHECKING:
    from cropray.evaluate.job import EvalResult

EXAMPLE = """example:
  cropray synth /tmp/test --n 5000 --labeled --seed 99
  cropray eval /tmp/model /tmp/test --report /tmp/report
  cropray eval /tmp/model /tmp/test --json

Reports ROC-AUC, PR-AUC, recall at 1% and 5% false-positive rate, accuracy and balanced accuracy at the
bundle's threshold, each with a 95% stratified-bootstrap interval, and recall per SNR bin when the
archive has an `snr` column. --report DIR writes metrics.json and roc.png, pr.png, score_hist.png,
calibration.png (and snr_recall.png). Invalid rows are skipped and counted (exit 1).
"""


def register(sub) -> None:
    p = sub.add_parser(
        "eval", help="evaluate a model bundle on a labelled archive (metrics, plots)",
        description="Score a labelled crop archive with a model bundle and report metrics with intervals.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", metavar="MODEL", help="model bundle directory (from `cropray train`)")
    p.add_argument("labels", metavar="LABELS", help="labelled archive: Parquet file, directory, glob or URI")
    p.add_argument("--report", metavar="DIR", default=None, help="write metrics.json and PNG plots here")
    p.add_argument("--crop-shape", default=None, metavar="HxW", help="crop shape for plain list columns")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from cropray.archive import parse_crop_shape
    from cropray.evaluate import evaluate_bundle

    shape = parse_crop_shape(args.crop_shape) if args.crop_shape else None
    s = evaluate_bundle(args.model, args.labels, report=args.report, crop_shape=shape)
    emit(s, _human(s), args.json)
    return EXIT_ATTENTION if s.invalid_rows else EXIT_OK


def _rule(r: dict | None) -> str:
    """The bundle's threshold rule in words (bundles before the record: Youden's J)."""
    if r and r.get("rule") == "target_fpr":
        return f"target FPR {r['target_fpr']:g} on {r['n_backgrounds']:,} archive backgrounds"
    return "Youden's J on the training CV"


def _human(s: EvalResult) -> str:
    m, cc = s.metrics, s.class_counts
    rows = [[name, f"{m[k]['value']:.4f}", f"[{m[k]['lo']:.4f}, {m[k]['hi']:.4f}]"] for name, k in (
        ("ROC-AUC", "roc_auc"), ("PR-AUC (avg precision)", "pr_auc"), ("recall @ 1% FPR", "recall_at_1pct_fpr"),
        ("recall @ 5% FPR", "recall_at_5pct_fpr"), ("accuracy @ threshold", "accuracy"),
        ("balanced accuracy", "balanced_accuracy"))]
    inv = s.invalid_rows
    lines = [f"model      {s.model_id} ({s.arch}), threshold {s.threshold:.4g} ({_rule(s.threshold_rule)})",
             f"labels     {s.n_labels:,} used of {s.n_read:,} rows: {cc['signal']:,} signal, "
             f"{cc['not_signal']:,} not; {inv:,} invalid rows skipped" + (" - needs attention" if inv else ""),
             "", fmt_table(rows, ["metric", "value", "95% interval"])]
    if s.snr_recall:
        lines += ["", fmt_table([[f"{b['snr_lo']:.3g}-{b['snr_hi']:.3g}", b["n_pos"], f"{b['recall']:.3f}",
                                  f"[{b['lo']:.3f}, {b['hi']:.3f}]"] for b in s.snr_recall],
                                ["SNR bin", "signals", "recall", "95% interval"])]
    ba = m["balanced_accuracy"]
    lines.append(f"\nat the shipped threshold: balanced accuracy {ba['value']:.4f} [{ba['lo']:.4f}, {ba['hi']:.4f}], "
                 f"false-alarm rate {s.fpr_here:.4f} on this set's negatives"
                 + (f" (promised {s.threshold_rule['target_fpr']:g})" if (s.threshold_rule or {}).get("rule")
                    == "target_fpr" else ""))
    lines.append(f"threshold that would maximise Youden's J on this set: {s.threshold_here:.4g}")
    if s.training_labels:
        lines.append("note       these are the model's own training labels: the figures are optimistic")
    if s.report:
        lines.append(f"report     {s.report['dir']} ({len(s.report['files'])} files)")
    lines.append(f"time       {s.seconds:.1f} s")
    return "\n".join(lines)
