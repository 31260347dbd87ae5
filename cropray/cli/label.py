"""`cropray label QUEUE --out LABELS`: a loopback-only labelling page; every answer durable first."""

from __future__ import annotations

import argparse
import sys

from cropray.cli._common import EXIT_OK, add_json_flag, emit

EPILOG = """\
example:
  cropray label queue.parquet --out labels/
  # open the printed http://127.0.0.1:PORT/?token=... ; keys: s signal, n not signal, k skip, u undo
  # over SSH: ssh -L 8765:127.0.0.1:8765 HOST, run it there, open the URL here
  cropray train labels/ --out model2/

LABELS is a directory of small Parquet part files (crop_id, crop, label, ...), readable by
`cropray train` and pandas at any moment; each answer is on disk (fsynced) before the page shows the
next crop, and undo removes the last answer durably. Rerunning resumes where it stopped. One
`cropray label` per LABELS at a time (a second one exits 2).
exit status: 0 stopped (Ctrl-C) or the queue is done, 2 bad usage or input."""


def register(sub) -> None:
    p = sub.add_parser("label", help="label a queue in the browser (loopback only, token in the URL)",
                       description="Serve a local labelling page for the crops of QUEUE, appending answers to LABELS.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("queue", metavar="QUEUE", help="queue file from `cropray suggest` (needs crop_id and crop)")
    p.add_argument("--out", required=True, metavar="LABELS", help="labels directory (created if missing)")
    p.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765; taken: another free one)")
    p.add_argument("--exit-when-done", action="store_true", help="stop serving once every crop is answered")
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from cropray.label.server import serve

    s = serve(args.queue, args.out, port=args.port, exit_when_done=args.exit_when_done,
              say=lambda m: print(m, file=sys.stderr, flush=True), url_out=sys.stdout)
    emit(s, f"labelled {s['labelled']} of {s['queue_rows']} crops ({s['skipped']} skipped) in {s['labels']}",
         args.json)
    return EXIT_OK
