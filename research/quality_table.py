"""The quality table judged on the independent simulator (research/outside_sim), as a new user runs cropray.

    python research/quality_table.py --work DIR [--labels 25,50,200] [--modes physics,auto,archive]
        [--tag after] [--cropray-path /tmp/before] [--train-args="--arch shallow_cnn --no-compare"]
    python research/quality_table.py --work DIR --table          # print the rows already measured
    python research/quality_table.py --work DIR --smoke-test     # everything at tiny sizes (< 90 s)

Sets (written once under DIR/sets, reused): labels (seed 1; a smaller label count is the first rows
of a larger one's set), fresh SNR 6-60 (seed 2), faint SNR 4-12 (seed 3), curved/wandering tracks
(seed 4), an unlabelled archive, half signals, SNR 3-60 (seed 5). Each row trains with the `cropray`
CLI (`cropray train LABELS --out M --seed 0`, `+ --archive ARCHIVE` for the archive mode; the physics
row is `--arch dedoppler`, its threshold placed on the smallest label count's set) and `cropray
eval`s the bundle on the three test sets. Columns: ROC-AUC on fresh crops [95% bootstrap interval],
recall at 1% FPR on fresh crops, faint ROC-AUC, curved ROC-AUC, balanced accuracy on fresh crops at
the bundle's own threshold, and the CV's bias (the bundle's CV ROC-AUC minus the fresh one).

Rows go to DIR/rows.jsonl keyed by (tag, labels, mode): a rerun skips rows already there, so an
interrupted run resumes, and runs of different code (`--tag before --cropray-path OLD_CHECKOUT`)
sit side by side in one table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `research` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from research.outside_sim.sets import write_set  # noqa: E402

MODES = ("physics", "auto", "archive")
EVAL_SETS = ("fresh", "faint", "curved")
SEEDS = {"labels": 1, "fresh": 2, "faint": 3, "curved": 4, "archive": 5}


def _ints(text: str) -> list[int]:
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--labels must be comma-separated integers, got {text!r}") from None
    if not vals or min(vals) < 25:
        raise argparse.ArgumentTypeError(f"--labels needs label counts >= 25 (cropray train's minimum), got {text!r}")
    return sorted(set(vals))


def _modes(text: str) -> list[str]:
    vals = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in vals if v not in MODES]
    if bad or not vals:
        raise argparse.ArgumentTypeError(f"--modes takes a comma-separated subset of {', '.join(MODES)}, got {text!r}")
    return vals


def ensure_set(work: Path, kind: str, n: int) -> Path:
    """DIR/sets/KIND-nN-sSEED, written by the outside simulator unless already complete."""
    out = work / "sets" / f"{kind}-n{n}-s{SEEDS[kind]}"
    done = out / ".complete"
    if not done.exists():
        t0 = time.perf_counter()
        write_set(out, kind, n, SEEDS[kind])
        done.write_text(f"{time.perf_counter() - t0:.1f} s\n")
    return out


class Cropray:
    """The `cropray` CLI as a user runs it; with `path`, the cropray package found there instead."""

    def __init__(self, path: str | None, log: Path):
        self.env = dict(os.environ)
        if path:
            self.env["PYTHONPATH"] = str(Path(path).resolve())
        self.log = log

    def __call__(self, *args: str) -> dict:
        cmd = [sys.executable, "-m", "cropray", *args, "--json"]
        # cwd outside any checkout: `python -m` puts the cwd first on sys.path, ahead of PYTHONPATH.
        with tempfile.TemporaryDirectory() as cwd, open(self.log, "a") as log:
            log.write(f"\n$ {' '.join(cmd)}\n")
            log.flush()
            p = subprocess.run(cmd, cwd=cwd, env=self.env, stdout=subprocess.PIPE, stderr=log, text=True)
        if p.returncode not in (0, 1) or not p.stdout.strip():  # 1 = finished, with something to look at
            raise RuntimeError(f"{' '.join(cmd[2:5])} ... failed (exit {p.returncode}); see {self.log}")
        return json.loads(p.stdout)


def _value(m: dict, key: str):
    v = m.get(key)
    return v.get("value") if isinstance(v, dict) else v


def measure(cropray: Cropray, model: Path, sets: dict[str, Path]) -> dict:
    """The table's columns for one bundle: `cropray eval` on each test set."""
    full = {k: cropray("eval", str(model), str(sets[k])) for k in EVAL_SETS}
    ev = {k: v["metrics"] for k, v in full.items()}
    f = ev["fresh"]
    return {"auc": _value(f, "roc_auc"), "auc_lo": f["roc_auc"]["lo"], "auc_hi": f["roc_auc"]["hi"],
            "recall_1pct": _value(f, "recall_at_1pct_fpr"), "faint_auc": _value(ev["faint"], "roc_auc"),
            "faint_recall_1pct": _value(ev["faint"], "recall_at_1pct_fpr"),
            "curved_auc": _value(ev["curved"], "roc_auc"),
            "curved_recall_1pct": _value(ev["curved"], "recall_at_1pct_fpr"),
            "bal_acc": _value(f, "balanced_accuracy"), "threshold": f.get("threshold"),
            "fpr_at_threshold": full["fresh"].get("fpr_here")}  # the shipped threshold's false-alarm rate


def train_row(cropray: Cropray, work: Path, tag: str, n: int | None, mode: str, labels: Path,
              archive: Path | None, train_args: list[str], archive_args: list[str], seed: int) -> dict:
    model = work / "models" / tag / f"{mode}-{n or 'none'}"
    args = ["train", str(labels), "--out", str(model), "--seed", str(seed), "--overwrite"]
    args += ["--arch", "dedoppler"] if mode == "physics" else list(train_args)
    if mode == "archive":
        args += ["--archive", str(archive), *archive_args]
    t0 = time.perf_counter()
    tr = cropray(*args)
    wall = time.perf_counter() - t0
    cv = tr.get("cv_metrics") or {}
    arch = tr.get("arch")
    auto = "--arch" not in args
    shipped = f"auto → {arch}" if auto else arch
    if mode == "archive":
        shipped += " + --archive"
    row = {"tag": tag, "labels": n, "mode": mode, "shipped": shipped, "arch": arch,
           "train_args": args[7:], "train_wall_s": round(wall, 1), "cv_auc": _value(cv, "roc_auc"),
           "cv_lo": (cv.get("roc_auc") or {}).get("lo"), "cv_hi": (cv.get("roc_auc") or {}).get("hi"),
           "auto_comparison": tr.get("auto_comparison"), "threshold_rule": tr.get("threshold_rule")}
    return row


def _fmt(v, d: int = 3) -> str:
    return "–" if v is None else f"{v:.{d}f}"


def table(rows: list[dict]) -> str:
    lines = ["| tag | labels | what shipped | ROC-AUC [95%] | recall@1%FPR | faint AUC | curved AUC | "
             "balanced acc. at the shipped threshold | false alarms at it | CV ROC-AUC [95%] (bias) | train s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    order = {m: i for i, m in enumerate(MODES)}
    tags = {t: i for i, t in enumerate(dict.fromkeys(r["tag"] for r in rows))}  # in the order first measured
    for r in sorted(rows, key=lambda r: (tags[r["tag"]], r["labels"] or 0, order[r["mode"]])):
        bias = None if r.get("cv_auc") is None else r["cv_auc"] - r["auc"]
        cv = "–" if bias is None else f"{r['cv_auc']:.3f} ({bias:+.3f})"
        if bias is not None and r.get("cv_lo") is not None:  # is the fresh figure inside the CV's interval?
            cv = f"{r['cv_auc']:.3f} [{r['cv_lo']:.3f}, {r['cv_hi']:.3f}] ({bias:+.3f})"
        lines.append(f"| {r['tag']} | {r['labels'] or '–'} | {r['shipped']} | {r['auc']:.3f} "
                     f"[{r['auc_lo']:.3f}, {r['auc_hi']:.3f}] | {_fmt(r['recall_1pct'])} | {_fmt(r['faint_auc'])} | "
                     f"{_fmt(r['curved_auc'])} | {_fmt(r['bal_acc'])} | {_fmt(r.get('fpr_at_threshold'), 4)} | {cv} | "
                     f"{r['train_wall_s']:.0f} |")
    return "\n".join(lines)


def load_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", required=True, type=Path, help="directory for sets, bundles, rows.jsonl, log")
    p.add_argument("--labels", type=_ints, default=[25, 50, 200], help="label counts (default 25,50,200)")
    p.add_argument("--modes", type=_modes, default=list(MODES), help="physics,auto,archive (default all)")
    p.add_argument("--tag", default="after", help="names this code's rows (default after)")
    p.add_argument("--cropray-path", default=None, help="run the cropray package in this checkout (PYTHONPATH)")
    p.add_argument("--train-args", default="", help="extra `cropray train` arguments for auto/archive rows")
    p.add_argument("--archive-args", default="", help="extra `cropray train` arguments for archive rows only")
    p.add_argument("--n-eval", type=int, default=2000, help="crops per test set (default 2000)")
    p.add_argument("--n-archive", type=int, default=20000, help="archive crops (default 20000)")
    p.add_argument("--seed", type=int, default=0, help="cropray train --seed (default 0)")
    p.add_argument("--table", action="store_true", help="print the table of DIR/rows.jsonl and exit")
    p.add_argument("--smoke-test", action="store_true",
                   help="tiny sizes, 1 epoch, shallow_cnn only: checks the pipeline end to end")
    a = p.parse_args(argv)
    if a.n_eval < 20 or a.n_archive < 20:
        p.error("--n-eval and --n-archive must be >= 20")
    if a.smoke_test:
        a.labels, a.n_eval, a.n_archive = [26], 60, 120
        a.train_args = f"--arch shallow_cnn --no-compare --epochs 1 {a.train_args}"
        a.archive_args = f"--archive-crops 100 {a.archive_args}"
        a.tag = a.tag if a.tag != "after" else "smoke"
    return a


def main(argv=None) -> int:
    a = parse(argv)
    a.work.mkdir(parents=True, exist_ok=True)
    jsonl = a.work / "rows.jsonl"
    if a.table:
        print(table(load_rows(jsonl)))
        return 0
    done = {(r["tag"], r["labels"], r["mode"]) for r in load_rows(jsonl)}
    cropray = Cropray(a.cropray_path, a.work / "cropray.log")
    sets = {k: ensure_set(a.work, k, a.n_eval) for k in EVAL_SETS}
    archive = ensure_set(a.work, "archive", a.n_archive) if "archive" in a.modes else None
    train_args = a.train_args.split()
    plan = [(None, "physics")] if "physics" in a.modes else []
    plan += [(n, m) for n in a.labels for m in ("auto", "archive") if m in a.modes]
    for n, mode in plan:
        if (a.tag, n, mode) in done:
            continue
        labels = ensure_set(a.work, "labels", n or min(a.labels))
        print(f"[{time.strftime('%H:%M:%S')}] {a.tag}: {mode} at {n or '-'} labels", file=sys.stderr, flush=True)
        row = train_row(cropray, a.work, a.tag, n, mode, labels, archive, train_args,
                        a.archive_args.split(), a.seed)
        row.update(measure(cropray, a.work / "models" / a.tag / f"{mode}-{n or 'none'}", sets))
        row.update(n_eval=a.n_eval, n_archive=a.n_archive if mode == "archive" else None,
                   physics_labels=min(a.labels) if mode == "physics" else None,
                   finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
        with open(jsonl, "a") as f:
            f.write(json.dumps(row) + "\n")
    print(table([r for r in load_rows(jsonl) if r["tag"] == a.tag]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
