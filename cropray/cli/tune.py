"""`cropray tune LABELS --out DIR`: hyperparameter sweep per label-count regime on Ray Tune."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from cropray.cli._common import (
    EXIT_ATTENTION,
    EXIT_OK,
    add_json_flag,
    crop_shape_type,
    emit,
    json_stdout,
    non_negative_int,
    positive_int,
)
from cropray.errors import ConfigError

if TYPE_CHECKING:
    from cropray.tune.results import TuneResult

EXAMPLE = """example:
  cropray synth /tmp/labels --n 300 --labeled --seed 1
  cropray tune /tmp/labels --out /tmp/sweep --samples 16 --epochs 20     # 300 labels -> 'mid' space
  cropray tune /tmp/labels --out /tmp/sweep --resume                     # continue after an interruption
  cropray tune /tmp/labels --out /tmp/sweep2 --regime few --search random --time-budget 600 --json
  cropray tune /tmp/labels --out /tmp/sweep3 --archive /tmp/archive --archive-crops 8000   # + injections
  cropray train /tmp/labels --out /tmp/model --config /tmp/sweep/best_config.json   # same as OUT/bundle

Each trial cross-validates one configuration (stratified k-fold, every trial on the same folds) and
reports its metrics after every epoch; ASHA stops poor trials early on the pooled inner-validation
ROC-AUC (never the held-out folds); the objective (--metric) ranks the trials and guides Optuna's TPE,
which proposes the next configuration (random search without optuna). Trial 0 is the regime's default
configuration. A trial that raises is recorded as failed and the sweep goes on (exit 1 when any
failed). OUT gets trials.parquet and .csv, sweep_params.png, sweep_progress.png, best_config.json,
bundle/, summary.json, and Tune's experiment in sweep/. bundle/ follows `cropray train`'s rule: the best
configuration retrained on all labels (threshold and CV metrics from the winning trial's out-of-fold
scores) only when its paired ROC-AUC gain over dedoppler on those crops has a 95% lower bound above
zero; otherwise the label-free dedoppler ships (the summary says so, with the gain and its interval). --archive (as in `cropray train`): injected
crops from an unlabelled archive, built once, join every trial's training folds and the retrain; folds,
threshold and metrics stay real labels only. On a cluster, OUT must be on storage every node sees and
ARCHIVE readable by the driver (trials get its crops through the object store); submit with
`ray job submit --working-dir . -- python jobs/tune_sweep.py ...`.

search spaces (a parameter named '<arch>.x' exists only when that architecture is drawn):
"""


def _positive_float(flag: str, hi: float, allow_zero: bool = False):
    def parse(v: str) -> float:
        try:
            x = float(v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a number, got {v!r}") from None
        if not ((x >= 0 if allow_zero else x > 0) and x <= hi):
            raise argparse.ArgumentTypeError(f"{flag} must be {'>= 0' if allow_zero else '> 0'} and <= {hi:,}, "
                                             f"got {v}")
        return x

    return parse


def _spaces_text() -> str:
    from cropray.cli._common import fmt_table
    from cropray.tune.spaces import REGIME_BOUNDS, SPACES, space_rows

    parts = []
    for regime in SPACES:
        lo, hi = REGIME_BOUNDS[regime]
        parts.append(f"{regime} ({lo}-{hi} labels):" if hi else f"{regime} ({lo}+ labels):")
        parts.append("  " + fmt_table(space_rows(regime), ["parameter", "range", "default"]).replace("\n", "\n  "))
    return "\n".join(parts) + "\n"


# flag dest -> TuneConfig field
_FIELDS = {"regime": "regime", "samples": "samples", "epochs": "epochs", "metric": "metric", "search": "search",
           "max_concurrent": "max_concurrent", "cpus_per_trial": "cpus_per_trial",
           "gpus_per_trial": "gpus_per_trial", "time_budget": "time_budget_s", "seed": "seed", "folds": "folds",
           "fixed": "fixed"}


def _description() -> str:
    from cropray.models.policy import REGIMES  # the regime table (torch-free)

    ranges = ", ".join(f"{r.name}: {r.label_range} labels" for r in REGIMES)
    return ("Hyperparameter sweep on Ray Tune over the search space of the labelled set's regime "
            f"({ranges}), cross-validated objective, early stopping of "
            "poor trials, then the best configuration retrained on all labels into a model bundle.")


def epilog() -> str:
    return EXAMPLE + _spaces_text()


def register(sub) -> None:
    p = sub.add_parser(
        "tune", help="sweep hyperparameters for the label count's regime and bundle the best model",
        description=_description(), epilog=epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    add_tune_args(p)
    p.set_defaults(func=run)


def add_tune_args(p: argparse.ArgumentParser) -> None:
    """Every `cropray tune` argument (shared with jobs/tune_sweep.py)."""
    from cropray.tune.config import LIMITS, METRICS, REGIME_CHOICES, SEARCHES

    p.add_argument("labels", metavar="LABELS", help="labelled archive: Parquet file, directory, glob or URI")
    p.add_argument("--out", required=True, metavar="DIR", help="sweep output directory")
    p.add_argument("--regime", choices=REGIME_CHOICES, default=None,
                   help="search space (default auto: by label count; a forced mismatch only warns)")
    p.add_argument("--samples", type=positive_int("--samples", LIMITS["samples"]), default=None, metavar="N",
                   help="trials (default 16)")
    p.add_argument("--epochs", type=positive_int("--epochs", LIMITS["epochs"]), default=None, metavar="E",
                   help="max epochs per trial, ASHA's max_t (default 30)")
    p.add_argument("--metric", choices=list(METRICS), default=None,
                   help="objective, maximised (default cv_auc; " +
                   "; ".join(f"{k}: {v[1]}" for k, v in METRICS.items()) + ")")
    p.add_argument("--search", choices=SEARCHES, default=None,
                   help="auto (default): Optuna TPE when optuna is installed, else random")
    p.add_argument("--max-concurrent", type=positive_int("--max-concurrent", LIMITS["max_concurrent"]), default=None,
                   metavar="M",
                   help="trials at once (default: cluster CPUs / --cpus-per-trial)")
    p.add_argument("--cpus-per-trial", type=_positive_float("--cpus-per-trial", LIMITS["cpus_per_trial"]),
                   default=None, metavar="C",
                   help="CPUs per trial, also its torch threads (default 1)")
    p.add_argument("--gpus-per-trial", type=_positive_float("--gpus-per-trial", LIMITS["gpus_per_trial"],
                                                            allow_zero=True), default=None, metavar="G",
                   help="GPUs per trial (default 0; > 0 trains on CUDA)")
    p.add_argument("--time-budget", type=_positive_float("--time-budget", LIMITS["time_budget_s"]), default=None,
                   metavar="SECONDS",
                   help="stop all trials after this long (the best so far is still bundled)")
    p.add_argument("--seed", type=non_negative_int("--seed", LIMITS["seed"]), default=None, metavar="S",
                   help="seed of the searcher, the folds and every trial (default 0)")
    p.add_argument("--folds", type=positive_int("--folds", LIMITS["folds"]), default=None, metavar="K",
                   help="cross-validation folds (default min(5, minority class count))")
    p.add_argument("--fixed", default=None, metavar="JSON",
                   help='unsearched training keys and per-arch model kwargs (inline JSON or a file), e.g. '
                   '\'{"batch_size": 64, "shallow_cnn": {"channels": [16, 32, 64]}}\'')
    p.add_argument("--crop-shape", type=crop_shape_type, default=None, metavar="HxW",
                   help="crop shape for plain list columns")
    from cropray.cli.train import add_archive_args, add_target_fpr_arg

    add_archive_args(p)  # the same flags, checks and messages as `cropray train --archive`
    add_target_fpr_arg(p)  # the refit's threshold
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="Ray cluster to join ('auto': the one `ray start` runs here; default: RAY_ADDRESS, "
                   "else a private local Ray for this sweep)")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted sweep in DIR with its saved settings")
    p.add_argument("--overwrite", action="store_true", help="replace the outputs of an earlier sweep in DIR")
    add_json_flag(p)


def run(args) -> int:
    from cropray.cli.train import archive_trouble, inject_config, load_config
    from cropray.tune.config import TuneConfig
    from cropray.tune.sweep import run_sweep

    given = {field: getattr(args, dest) for dest, field in _FIELDS.items() if getattr(args, dest) is not None}
    if "fixed" in given:
        given["fixed"] = load_config(given["fixed"], flag="--fixed")
    if args.resume and args.overwrite:
        raise ConfigError("--resume and --overwrite contradict each other: pick one")
    if args.resume and given:
        print(f"cropray tune: --resume uses the sweep's saved settings; ignoring {', '.join(sorted(given))}",
              file=sys.stderr)
    tcfg = None if args.resume else TuneConfig(**given)
    inject = inject_config(args, given.get("seed", TuneConfig().seed))  # None without --archive
    if args.resume and args.archive_crops is None and args.inject_config is None and args.seed is None:
        inject = None  # the resumed sweep's own injection settings (a different archive is refused)
    from cropray.outlock import output_lock

    # --json: stdout holds the JSON only, whatever Ray prints
    with json_stdout(args.json) as out:
        with output_lock(args.out):  # one writer per sweep directory: DIR/_lock, freed when this process ends
            s = run_sweep(args.labels, args.out, tcfg, crop_shape=args.crop_shape, address=args.address,
                          resume=args.resume, overwrite=args.overwrite, archive=args.archive, inject=inject,
                          target_fpr=args.target_fpr)
        emit(s, human(s), args.json, out)
    attention = (s.trials.failed or s.invalid_rows or s.best is None
                 or (s.bundle and s.bundle.error) or archive_trouble(s.archive))
    return EXIT_ATTENTION if attention else EXIT_OK


def human(s: TuneResult) -> str:
    from cropray.cli.train import archive_lines

    n, m = s.trials, s.metric
    lines = [
        f"sweep      {s.experiment}  ({s.regime} regime, {s.search} search, <= {s.epochs} epochs/trial, "
        f"objective {m})" + ("  [resumed]" if s.resumed else ""),
        f"labels     {s.n_labels:,}: {s.class_counts['signal']:,} signal, {s.class_counts['not_signal']:,} not"
        + (f"; {s.invalid_rows:,} invalid rows skipped" if s.invalid_rows else ""),
        f"trials     {n.total}: {n.completed} completed, {n.stopped} stopped early, {n.failed} failed"
        + (f", {n.not_run} not run" if n.not_run else ""),
    ]
    if s.regime_warning:
        lines.append(f"warning    {s.regime_warning}")
    b = s.best
    if b is None:
        lines.append("best       none: no trial produced a score - see trials.csv (error column)")
    else:
        d = s.default
        ref = "" if not d else f"  (default config: {d.value:.4f}" + (
            f", stopped early at epoch {d.epochs_run})" if d.status == "stopped" else ")")
        lines.append(f"best       trial {b.trial_id}: {m} {b.value:.4f}{ref}")
        lines.append("           " + "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                               for k, v in b.params.items()))
    if s.bundle:
        c = s.bundle.cv_roc_auc
        lines.append(f"bundle     {s.bundle.path}  ({s.bundle.arch + ', ' if s.bundle.arch else ''}{s.bundle.model_id})")
        if s.bundle.error:
            lines.append(f"WARNING    {s.bundle.error}")
        lines.append(f"           refit on all labels; CV k={s.bundle.k} ROC-AUC {c['value']:.3f} "
                     f"[{c['lo']:.3f}, {c['hi']:.3f}] (95% bootstrap, out-of-fold)")
        lines.append(f"           CV from {s.bundle.cv_source}" if s.bundle.cv_source.startswith("trial")
                     else f"           {s.bundle.cv_source}")
        lines.append(f"           threshold {s.bundle.threshold:.4g} ({s.bundle.threshold_rule or 'Youden'})")
        g = s.bundle.gain_vs_physics
        if g:
            lines.append(f"           best trial's paired ROC-AUC gain vs dedoppler {g['gain']:+.4f} "
                         f"[{g['lo']:+.4f}, {g['hi']:+.4f}] " + ("(proven)" if g["proven"] else "(not proven)"))
        if s.bundle.physics:
            lines.append(f"SHIPS      {s.bundle.arch or 'dedoppler'}, not the best trial: {s.bundle.physics}")
    if s.archive:
        shipped = s.bundle.arch if s.bundle and s.bundle.arch else s.best.config["arch"] if s.best else "model"
        lines.extend(archive_lines(s.archive, shipped))
    lines.append(f"outputs    {s.out}: trials.parquet, trials.csv, sweep_params.png, sweep_progress.png, "
                 "best_config.json, summary.json")
    t = s.seconds
    lines.append(f"time       sweep {t.sweep:.0f} s, retrain {t.retrain:.0f} s, total {t.total:.0f} s")
    return "\n".join(lines)
