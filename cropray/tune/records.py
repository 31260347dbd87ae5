"""cropray's own record of a sweep: plain JSON that `--resume` rebuilds the sweep from (no pickle).

    OUT/tune_config.json     the TuneConfig the sweep started with (--resume reuses it)
    OUT/data.json            {"labels", "n_labels", "fingerprint", "regime", "archive"} (--resume checks
                             them; "archive": null, or its path, fingerprint and injection settings)
    OUT/trials/trial-NNNN.json   one per trial, written by the driver when the trial appears and
                             again when it ends: {"trial": NNNN, "trial_id", "config", "status",
                             "result", "error", "experiment", "oof"}; "oof": a completed
                             trial's out-of-fold work (cropray.tune.oof), null otherwise

Why not `Tuner.restore`: it unpickles `tuner.pkl`, `searcher-state-*.pkl` and cloudpickle blobs inside
`experiment_state-*.json` from OUT, which the README puts on shared storage - whoever can write there
could run code in the next `--resume`. Hashing those files when we write them would only move the
question to where the hashes live (same directory), and would still run Tune's unpickler on whatever
matched. Records are data: a damaged or foreign one is refused with a message (exit 2), and the worst a
planted one can do is describe a trial that never ran.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

from cropray.errors import ConfigError, CroprayError
from cropray.tune.config import TuneConfig
from cropray.tune.oof import check_oof
from cropray.tune.spaces import SPACES, Choice, Int, train_dict
from cropray.tune.sweep_archive import valid_state as valid_archive_state

RECORDS = "trials"
TUNE_CONFIG = "tune_config.json"
DATA = "data.json"
STATUSES = ("running", "completed", "stopped", "failed", "not run")
FINISHED = ("completed", "stopped", "failed")  # kept by --resume; the others rerun from epoch 1
RESULT_KEYS = ("epoch", "finished", "cv_auc", "cv_auc_std", "cv_auc_lcb", "val_auc", "inner_val_auc", "train_loss",
               "oof_auc", "oof_auc_lo", "oof_auc_hi", "best_epoch", "time_total_s", "timestamp")
MAX_RECORD_BYTES = 64 << 20  # a completed trial's record holds ~25 bytes per label (its out-of-fold scores)
_NAME = re.compile(r"trial-(\d{4,6})\.json")


def write_json(path: Path, obj: Any) -> None:
    """Write atomically (temp file + rename): a killed driver leaves the old record or the new one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, allow_nan=True))
    os.replace(tmp, path)


def record_path(out: Path, index: int) -> Path:
    return out / RECORDS / f"trial-{index:04d}.json"


def status_of(result: dict) -> str:
    """completed (reported `finished`), stopped (early, after >= 1 epoch) or not run."""
    if result.get("finished"):
        return "completed"
    return "stopped" if int(result.get("epoch", 0) or 0) > 0 else "not run"


def make_record(index: int, trial_id: str, config: dict, status: str, result: dict, error: str | None,
                experiment: str) -> dict:
    kept = {k: _plain(result[k]) for k in RESULT_KEYS if k in result}
    oof = result.get("oof")
    return {"trial": index, "trial_id": trial_id, "config": dict(config), "status": status, "result": kept,
            "error": error, "experiment": experiment, "oof": oof if check_oof(oof) is None else None}


def _plain(v):
    if isinstance(v, bool):
        return v
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _read_json(path: Path, what: str, limit: int = MAX_RECORD_BYTES):
    """Parsed JSON of a sweep state file, or a CroprayError that names it (damaged, foreign, too big)."""
    hint = "; start a new sweep in another --out (or --overwrite)"
    if not path.is_file():
        raise CroprayError(f"{path}: missing, so this is not a complete cropray sweep state{hint}")
    if path.stat().st_size > limit:
        raise CroprayError(f"{path}: larger than {limit >> 20} MiB, not a cropray {what}{hint}")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CroprayError(f"{path}: damaged {what} (not valid JSON: {e}){hint}") from None


def load_state(out: Path) -> tuple[TuneConfig, dict, list[dict]]:
    """(settings, data.json, trial records sorted by index) of the sweep in `out`, each checked."""
    if not (out / TUNE_CONFIG).exists():
        raise CroprayError(f"{out}: no sweep to resume there (expected {out / TUNE_CONFIG} from an earlier "
                           "`cropray tune`); run without --resume")
    if not (out / RECORDS).is_dir():
        raise CroprayError(f"{out}: this sweep has no {RECORDS}/ records (written by an older cropray); resuming "
                           "it would mean unpickling Tune's state files, which cropray never does - start a new "
                           "sweep (--overwrite)")
    raw = _read_json(out / TUNE_CONFIG, "sweep config")
    try:
        tcfg = TuneConfig.from_dict(raw)
    except (ConfigError, TypeError) as e:
        raise CroprayError(f"{out / TUNE_CONFIG}: not a cropray sweep config ({e})") from None
    data = _check_data(_read_json(out / DATA, "sweep data record"), out / DATA)
    records = [_check_record(_read_json(p, "trial record"), p, data["regime"])
               for p in sorted((out / RECORDS).glob("trial-*.json"))]
    seen: dict[int, Path] = {}
    for r, p in zip(records, sorted((out / RECORDS).glob("trial-*.json"))):
        m = _NAME.fullmatch(p.name)
        if not m or int(m.group(1)) != r["trial"] or r["trial"] in seen:
            raise CroprayError(f"{p}: its trial number {r['trial']} does not match its name or repeats another "
                               "record's; the sweep state was edited")
        seen[r["trial"]] = p
    return tcfg, data, sorted(records, key=lambda r: r["trial"])


def _check_data(d, path: Path) -> dict:
    ok = (isinstance(d, dict) and isinstance(d.get("labels"), str) and isinstance(d.get("n_labels"), int)
          and isinstance(d.get("fingerprint"), str) and re.fullmatch(r"[0-9a-f]{64}", d["fingerprint"])
          and d.get("regime") in SPACES and valid_archive_state(d.get("archive")))
    if not ok:
        raise CroprayError(f"{path}: not a cropray sweep data record (expected labels, n_labels, fingerprint and "
                           f"a regime among {', '.join(SPACES)}); start a new sweep in another --out")
    return d


def _check_record(r, path: Path, regime: str) -> dict:
    """A trial record that fits this sweep: known status, a config of the regime's space, plain numbers."""
    def bad(why: str):
        raise CroprayError(f"{path}: not a trial record of this sweep ({why}); remove it to rerun that trial, "
                           "or start a new sweep")

    keys = {"trial", "trial_id", "config", "status", "result", "error", "experiment"}
    if not isinstance(r, dict) or set(r) - {"oof"} != keys:  # "oof": absent in records of an older cropray
        bad("unexpected structure")
    if isinstance(r["trial"], bool) or not isinstance(r["trial"], int) or not 0 <= r["trial"] < 1_000_000:
        bad(f"trial number {r['trial']!r}")
    if r["status"] not in STATUSES or not isinstance(r["trial_id"], str) or not isinstance(r["experiment"], str):
        bad(f"status {r['status']!r}")
    if not isinstance(r["config"], dict):
        bad("config is not an object")
    try:
        train_dict(SPACES[regime], r["config"])
        _check_point(SPACES[regime], r["config"])
    except (ConfigError, TypeError, KeyError) as e:
        bad(f"its config is not a point of the {regime!r} space: {e}")
    res = r["result"]
    if not isinstance(res, dict) or set(res) - set(RESULT_KEYS) or not all(
            v is None or isinstance(v, (bool, int, float)) for v in res.values()):
        bad("result holds unknown keys or non-numbers")
    if r["error"] is not None and not isinstance(r["error"], str):
        bad("error is not text")
    if r.get("oof") is not None and check_oof(r["oof"]):
        bad(f"its out-of-fold record: {check_oof(r['oof'])}")
    return r


def _check_point(space: dict, params: dict, prefix: str = "") -> None:
    """Every value of a sampled point inside its parameter's range (ConfigError naming the parameter)."""
    for name, spec in space.items():
        key, v = prefix + name, params.get(prefix + name)
        if isinstance(spec, Choice):
            ok = v in spec.options
        else:
            kinds = (int,) if isinstance(spec, Int) else (int, float)
            ok = isinstance(v, kinds) and not isinstance(v, bool) and math.isfinite(v) and spec.low <= v <= spec.high
        if not ok:
            raise ConfigError(f"{key}={v!r} is outside its range")
        if isinstance(spec, Choice) and v in spec.branches:
            _check_point(spec.branches[v], params, f"{prefix}{v}.")
