"""`cropray inspect PATH`: what an archive holds and whether its rows are valid."""

from __future__ import annotations

import argparse
import sys

from cropray.cli._common import EXIT_ATTENTION, EXIT_OK, add_json_flag, crop_shape_type, emit, fmt_table

EXAMPLE = """example:
  cropray synth /tmp/crops --n 20000 --files 4 --labeled
  cropray inspect /tmp/crops
  cropray inspect 's3://bucket/archive/*.parquet' --no-scan --json
"""


def register(sub) -> None:
    p = sub.add_parser(
        "inspect",
        help="summarise an archive: files, rows, schema, crop shape/dtype, labels, invalid rows",
        description="Summarise a crop archive (file, directory, glob or URI). Exit 1 if any row is invalid "
        "(a bad crop, or a label that is null or not 0/1), any crop_id repeats, or any file cannot be read.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", help="Parquet file, directory, glob or URI (s3://, gs://, file://)")
    p.add_argument("--crop-shape", type=crop_shape_type, default=None, help="HxW for plain lists whose shape is not square")
    p.add_argument("--no-scan", dest="scan", action="store_false", help="read only the footers (fast): no row checks")
    add_json_flag(p)
    p.set_defaults(func=run)


def _human(s: dict) -> str:
    lines = [
        f"archive   {s['archive']}",
        f"files     {s['files_ok']} readable of {s['files']}"
        f"   ({s.get('aliases_skipped', 0):,} aliases skipped: links to a file or directory already listed)",
        f"rows      {s['rows']:,}   ({s['bytes'] / 1e6:,.1f} MB on disk)",
        f"crops     {', '.join(s['crop'])}",
    ]
    if s["scanned"]:
        inv = ", ".join(f"{k}={v}" for k, v in sorted(s["invalid"].items())) or "none"
        lines.append(f"invalid   {s['invalid_rows']:,} rows ({inv})")
        lines.append(f"dup ids   {s['duplicate_ids']:,} crop_ids repeated ({s['duplicate_rows']:,} extra rows)")
        if s["labels"]:
            tot = sum(s["labels"].values())
            lab = ", ".join(f"{k}: {v:,} ({v / tot:.1%})" for k, v in sorted(s["labels"].items()))
            lines.append(f"labels    {lab}")
        if s["snr_range"]:
            lines.append(f"snr       {s['snr_range'][0]:.3g} .. {s['snr_range'][1]:.3g}")
    if len(s["per_file"]) <= 20:
        rows = [[f["file"], f"{f['rows']:,}", f["row_groups"], f.get("invalid", "-")] for f in s["per_file"]]
        lines += ["", fmt_table(rows, ["file", "rows", "row groups", "invalid"])]
    for f in s["failed"]:
        lines.append(f"FAILED    {f['file']}: {f['error']}")
    lines.append(f"\nschema:\n{s['schema']}")
    return "\n".join(lines)


def run(args) -> int:
    from cropray.archive.inspect import inspect_archive  # pyarrow/numpy: only when the command runs

    s = inspect_archive(args.path, crop_shape=args.crop_shape, scan=args.scan, progress=sys.stderr.isatty())
    emit(s, _human(s), args.json)
    attention = s["failed"] or (s["scanned"] and (s["invalid_rows"] or s["duplicate_rows"]))
    return EXIT_ATTENTION if attention else EXIT_OK
