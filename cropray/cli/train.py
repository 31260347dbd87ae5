"""`cropray train LABELS --out MODEL`: cross-validate, calibrate the threshold, write a bundle."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cropray.cli._common import EXIT_ATTENTION, EXIT_OK, add_json_flag, emit, non_negative_int, positive_int
from cropray.errors import ConfigError

EXAMPLE = """example:
  cropray synth /tmp/labels --n 300 --labeled --seed 1
  cropray train /tmp/labels --out /tmp/model                       # auto: 300 labels -> shallow_cnn
  cropray train /tmp/labels --out /tmp/model --arch siamese --epochs 30 --seed 2 --overwrite
  cropray train /tmp/labels --out /tmp/model --config '{"lr": 0.001, "dropout": 0.3}' --overwrite
  cropray train /tmp/labels --out /tmp/model --config train.json --json
  cropray train /tmp/labels --out /tmp/model --archive /tmp/archive --archive-crops 20000   # + injections
  cropray train /tmp/labels --out /tmp/model --archive /tmp/archive --self-train --self-train-tau 0.9 --overwrite
  cropray train /tmp/labels --out /tmp/model --archive /tmp/archive --target-fpr 0.01 --overwrite

--arch auto picks {regimes}. The model is
cross-validated (stratified k-fold, k = min(5, minority class count)); with --arch auto every candidate
and the label-free dedoppler run on the same folds, and a learned model ships only when its paired
ROC-AUC gain on the same out-of-fold crops has a 95% lower bound above zero (else physics ships).
The decision threshold maximises Youden's J on the out-of-fold scores, or with --target-fpr F is the
score a fraction F of the archive's backgrounds exceed (held back from training). The bundle is
then refit on all labels. Invalid rows are skipped and counted (exit 1). --config keys (JSON object,
or a file holding one) and their ranges:
"""


def register(sub) -> None:
    from cropray.models.policy import REGIMES  # torch-free, as is TrainConfig
    from cropray.train.config import TrainConfig, arch_choices

    regimes = ", ".join(f"{r.default} for {r.label_range} labels" for r in REGIMES)

    p = sub.add_parser(
        "train", help="train a crop classifier on a labelled archive and write a model bundle",
        description="Train, cross-validate and calibrate a classifier on a labelled crop archive "
        "(label: 1 = signal, 0 = not) and write a model bundle directory.",
        epilog=EXAMPLE.replace("{regimes}", regimes) + "  " + TrainConfig.describe().replace("; ", "\n  ") + "\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("labels", metavar="LABELS", help="labelled archive: Parquet file, directory, glob or URI")
    p.add_argument("--out", required=True, metavar="MODEL", help="bundle directory to write")
    p.add_argument("--arch", choices=arch_choices(), default=None, help="architecture (default auto, by label count)")
    p.add_argument("--config", metavar="JSON", default=None,
                   help="training config: inline JSON object or a JSON file (keys below)")
    p.add_argument("--epochs", type=positive_int("--epochs"), default=None, metavar="N",
                   help="max epochs (overrides --config; default per architecture)")
    p.add_argument("--seed", type=non_negative_int("--seed"), default=None, metavar="S", help="random seed (default 0)")
    p.add_argument("--folds", type=positive_int("--folds"), default=None, metavar="K",
                   help="cross-validation folds (default min(5, minority class count))")
    p.add_argument("--crop-shape", default=None, metavar="HxW", help="crop shape for plain list columns")
    add_archive_args(p)
    add_target_fpr_arg(p)
    p.add_argument("--no-compare", dest="compare", action="store_false",
                   help="with --arch auto: train only the label count's default architecture instead of "
                   "cross-validating every candidate for the label count and dedoppler on the same folds and "
                   "bundling the best (the default)")
    p.add_argument("--compare", dest="compare", action="store_true", default=True,
                   help=argparse.SUPPRESS)  # the default since the budget paid for it; kept for old scripts
    p.add_argument("--self-train", action="store_true",
                   help="with --archive: FixMatch-style pseudo-labels on archive crops (logit models: shallow / deep "
                   "CNN), one teacher per CV fold; kept only if its CV ROC-AUC beats training without it")
    p.add_argument("--self-train-rounds", type=positive_int("--self-train-rounds"), default=None, metavar="N",
                   help="teacher -> student rounds (default 1, at most 5)")
    p.add_argument("--self-train-tau", type=float, default=None, metavar="T",
                   help="confidence a pseudo-label needs on every weak view: p > T or p < 1 - T (default 0.95)")
    p.add_argument("--self-train-pool", type=positive_int("--self-train-pool"), default=None, metavar="N",
                   help="archive crops offered for pseudo-labels (default 4000)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing MODEL directory")
    add_json_flag(p)
    p.set_defaults(func=run)


def add_target_fpr_arg(p: argparse.ArgumentParser) -> None:
    """--target-fpr: shared by `cropray train` and `cropray tune` (its refit)."""
    p.add_argument("--target-fpr", type=float, default=None, metavar="F",
                   help="with --archive: set the threshold so that a fraction F (0 < F < 0.5, e.g. 0.01) of the "
                   "archive's backgrounds as drawn (screened-out ones included), held back from training, score "
                   "above it (default: Youden's J on the out-of-fold CV scores)")


def add_archive_args(p: argparse.ArgumentParser) -> None:
    """--archive, --archive-crops, --inject-config: shared by `cropray train` and `cropray tune`."""
    p.add_argument("--archive", default=None, metavar="ARCHIVE",
                   help="unlabelled archive of the same crops: backgrounds drawn from it get synthetic signals "
                   "injected in its own units and join training (never folds, threshold or metrics)")
    p.add_argument("--archive-crops", type=positive_int("--archive-crops", 2_000_000), default=None, metavar="N",
                   help="background crops drawn from --archive (default 20000; ~16 KB each in memory)")
    p.add_argument("--inject-config", default=None, metavar="JSON",
                   help="injection settings (inline JSON or file): archive_crops, inject_fraction, snr_range, "
                   "kinds, exclude_quantile, min_backgrounds, real_share, per_epoch, read_oversample, plain (negative | pu | "
                   "paired: what a plain background teaches), pu_prior")


def load_config(text: str | None, flag: str = "--config") -> dict:
    """`flag` (--config; tune's --fixed): an inline JSON object, or the path of a file holding one.
    ConfigError names the source."""
    if text is None:
        return {}
    src = flag
    raw = text
    if not text.lstrip().startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise ConfigError(f"{flag} {text}: no such file (give a JSON object or a JSON file)")
        src, raw = str(path), path.read_text()
    try:
        d = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{src}: not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{src}: must be a JSON object of training config keys")
    return d


def run(args) -> int:
    from cropray.archive import parse_crop_shape
    from cropray.train import TrainConfig, TrainJob, train_and_bundle

    d = load_config(args.config)
    try:
        cfg = TrainConfig.from_dict(d)
    except ConfigError as e:  # a key of the JSON: name the source, not a flag
        raise ConfigError(f"--config {args.config}: {e}") from None
    cfg = cfg.replace(arch=args.arch, epochs=args.epochs, seed=args.seed)  # a bad value names its flag
    shape = parse_crop_shape(args.crop_shape) if args.crop_shape else None
    inject = inject_config(args, cfg.seed)
    st = _self_train_config(args, cfg)
    job = TrainJob(labels=args.labels, out=args.out, config=cfg, folds=args.folds, crop_shape=shape,
                   overwrite=args.overwrite, archive=args.archive, inject=inject, self_train=st,
                   compare=args.compare, target_fpr=args.target_fpr)
    from cropray.outlock import output_lock

    # one writer per bundle: PARENT/.MODEL.lock (the bundle directory itself is replaced by a rename)
    with output_lock(args.out, beside=True):
        s = train_and_bundle(job)
    emit(s, _human(s), args.json)
    return EXIT_ATTENTION if s["invalid_rows"] or archive_trouble(s.get("archive")) else EXIT_OK


def inject_config(args, seed: int):
    """--archive-crops / --inject-config -> InjectConfig (None without --archive); ConfigError names the flag."""
    if args.archive is None:
        if args.archive_crops is not None or args.inject_config is not None:
            raise ConfigError("--archive-crops and --inject-config need --archive ARCHIVE")
        return None
    from cropray.inject import InjectConfig

    d = load_config(args.inject_config, "--inject-config")
    if args.archive_crops is not None:
        d["archive_crops"] = args.archive_crops
    d.setdefault("seed", seed)
    try:
        return InjectConfig.from_dict(d)
    except ConfigError as e:
        raise ConfigError(f"--inject-config: {e}") from None


def archive_lines(a: dict, arch: str) -> list[str]:
    """Summary lines of what --archive drew and injected (`cropray train` and `cropray tune`)."""
    failed = ", ".join(f["file"] for f in a["files_failed"][:3])
    lines = [f"archive    {a['drawn']:,} backgrounds from {a['files']} file(s), {a['excluded']:,} excluded "
             f"(may hold signals), {a['injected']:,} injected + {a['plain']:,} plain; "
             + ("training only" if a.get("used_by_model", True) else f"not used by the chosen {arch}")]
    if a["files_failed"]:
        lines.append(f"           {len(a['files_failed'])} unreadable file(s) skipped: {failed} - needs attention")
    lines.extend(f"warning    {w}" for w in a["warnings"])
    return lines


def archive_trouble(a: dict | None) -> bool:
    """Unreadable archive files or warnings (too few backgrounds, invalid rows): exit 1."""
    return bool(a and (a["files_failed"] or a["warnings"]))


SELF_TRAIN_FLAGS = {"rounds": "--self-train-rounds", "tau": "--self-train-tau", "pool": "--self-train-pool"}


def _self_train_config(args, cfg):
    """--self-train[-rounds|-tau|-pool] -> SelfTrainConfig (None without --self-train); ConfigError names the flag.
    An architecture chosen by hand that is not a logit model is refused here, before any training; one
    chosen by --arch auto is skipped with a warning (cropray.train.self_train_cv)."""
    from cropray.cli._common import flag_error

    given = {f: getattr(args, f"self_train_{f}") for f in SELF_TRAIN_FLAGS if getattr(args, f"self_train_{f}") is not None}
    if not args.self_train:
        if given:
            raise ConfigError(", ".join(SELF_TRAIN_FLAGS[f] for f in given) + " need --self-train")
        return None
    if args.archive is None:
        raise ConfigError("--self-train needs --archive ARCHIVE: the unlabelled crops it pseudo-labels")
    from cropray.models.policy import check_logit
    from cropray.train.self_train import SelfTrainConfig

    try:
        st = SelfTrainConfig(seed=cfg.seed, **given)
    except ConfigError as e:
        raise flag_error(e, SELF_TRAIN_FLAGS) from None
    if cfg.arch != "auto":
        try:
            check_logit(cfg.arch)
        except ConfigError as e:
            raise ConfigError(f"--self-train with --arch {cfg.arch}: {e}") from None
    return st


def _ci(m: dict) -> str:
    return f"{m['value']:.3f} [{m['lo']:.3f}, {m['hi']:.3f}]"


def _human(s: dict) -> str:
    m, cc = s["cv_metrics"], s["class_counts"]
    inv = s["invalid_rows"]
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(s["invalid_reasons"].items()))
    lines = [
        f"bundle     {s['bundle']}  ({s['model_id']})",
        f"labels     {s['n_labels']:,} used of {s['n_read']:,} rows read: {cc['signal']:,} signal, "
        f"{cc['not_signal']:,} not",
        f"skipped    {inv:,} invalid rows" + (f" ({reasons}) - needs attention" if inv else ""),
        f"model      {s['arch']}, refit {s['final_epochs']} epochs on all labels, seed {s['config']['seed']}",
        f"CV k={s['k']}     ROC-AUC {_ci(m['roc_auc'])}  PR-AUC {_ci(m['pr_auc'])}",
        f"           recall@1%FPR {_ci(m['recall_at_1pct_fpr'])}  recall@5%FPR {_ci(m['recall_at_5pct_fpr'])}",
        f"           accuracy at threshold {_ci(m['accuracy'])}  (95% bootstrap intervals, out-of-fold)",
        threshold_line(s),
        *gain_line(s.get("gain_vs_physics")),
        f"time       {s['seconds']:.1f} s",
    ]
    comp = s.get("auto_comparison")
    if comp:
        lines.extend(comparison_lines(comp))
    if s.get("archive"):
        lines.extend(archive_lines(s["archive"], s["arch"]))
        lines.extend(_self_train_lines(s["archive"].get("self_training")))
    if s["n_labels"] < 100:
        lines.append(f"note       {s['n_labels']} labels: every figure above is uncertain - read the intervals")
    return "\n".join(lines)


def comparison_lines(comp: dict) -> list[str]:
    """The auto comparison as a table: each candidate's CV ROC-AUC and its paired gain over physics on
    the same out-of-fold crops, with the interval; * = shipped."""
    from cropray.cli._common import fmt_table

    def gain(g):
        if g is None:
            return "-"
        return f"{g['gain']:+.4f} [{g['lo']:+.4f}, {g['hi']:+.4f}]" + (" proven" if g["proven"] else "")

    rows = [[("* " if c["chosen"] else "  ") + c["arch"] + (" + archive" if c["archive"] else ""),
             f"{c['cv_auc']:.4f}", gain(c.get("gain_vs_physics")), f"{c['seconds']:.0f}"] for c in comp["candidates"]]
    table = fmt_table(rows, ["candidate", "CV ROC-AUC", "paired gain vs physics (95%)", "s"])
    return ["compared   " + line if i == 0 else "           " + line for i, line in enumerate(table.splitlines())] \
        + [f"           {comp['reason']}"]


def gain_line(g: dict | None) -> list[str]:
    if not g:
        return []
    return [f"vs physics paired ROC-AUC gain over dedoppler {g['gain']:+.4f} [{g['lo']:+.4f}, {g['hi']:+.4f}] "
            f"({g['ci']:.0%}, same out-of-fold crops): " + ("proven" if g["proven"] else "not proven")]


def threshold_line(s: dict) -> str:
    d = s.get("threshold_detail") or {}
    if d.get("rule") == "target_fpr":
        return (f"threshold  {s['threshold']:.4g}  (target FPR {d['target_fpr']:g}: {d['exceed_fraction']:.4f} of "
                f"{d['n_backgrounds']:,} held-back archive backgrounds at or above it; Youden's J on the CV would "
                f"give {d['youden_threshold']:.4g})")
    return f"threshold  {s['threshold']:.4g}  ({s['threshold_rule']})"


def _self_train_lines(st: dict | None) -> list[str]:
    """The self-training summary: tau, rounds, pseudo-label counts per round and class, the verdict."""
    if not st:
        return []
    if st.get("skipped"):
        return [f"self-train {st['skipped']}"]
    per_fold = st.get("cv_folds") or []
    folds = "; ".join(f"fold {i + 1}: " + ", ".join(f"r{r['round']} {r['pseudo_signal']}+{r['pseudo_not']}"
                                                     for r in rounds) for i, rounds in enumerate(per_fold))
    lines = [f"self-train tau {st['tau']}, {st['rounds']} round(s), pool {st['pool']:,} archive crops; "
             f"pseudo-labels signal+not per round, CV {folds}"]
    if st.get("final"):
        lines.append("           refit: " + ", ".join(f"round {r['round']} {r['pseudo_signal']:,} signal + "
                                                      f"{r['pseudo_not']:,} not" for r in st["final"]))
    lines.append(f"           {st['reason']}")
    return lines
