"""The output manifest `OUTPUT/_manifest.json`: the record of which units are committed, and the report.

It is the single source of truth for resumption: a unit is done iff the manifest says so. It is
rewritten atomically (write a temporary file, fsync, `os.replace`), at most every few seconds while
running and always at the end, so a kill loses at most the last few seconds of commit records;
those units are simply scored again and their deterministic output names overwrite the same files.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections import Counter
from pathlib import Path

from cropray.errors import CroprayError
from cropray.scoring.result import ScoreResult

FORMAT = "cropray-score/1"
MANIFEST = "_manifest.json"


def versions() -> dict:
    """Versions of what scored, from the installed packages' metadata: the driver never imports torch
    (2-5 s of its start-up on 2 cores, ~400 MB of RSS) only to print its version; the actors do."""
    from importlib.metadata import PackageNotFoundError, version

    import cropray

    def of(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {"cropray": cropray.__version__, "ray": of("ray"), "torch": of("torch"), "pyarrow": of("pyarrow"),
            "numpy": of("numpy"), "onnxruntime": of("onnxruntime"), "python": platform.python_version()}


def atomic_write_json(path: Path, obj: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1, sort_keys=True, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # a full disk mid-write: the old manifest stays, the partial copy goes
        tmp.unlink(missing_ok=True)
        raise


class Manifest:
    """Load, check, update and save the manifest of one output directory."""

    def __init__(self, out: Path, data: dict, interval_s: float = 1.0):
        self.out, self.data, self.interval_s = Path(out), data, interval_s
        self._saved_at = 0.0

    @property
    def path(self) -> Path:
        return self.out / MANIFEST

    @classmethod
    def load(cls, out: Path) -> Manifest | None:
        p = Path(out) / MANIFEST
        if not p.exists():
            return None
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError) as e:
            raise CroprayError(f"{p}: unreadable manifest ({e}); rerun with --overwrite to start over") from None
        if data.get("format") != FORMAT:
            raise CroprayError(f"{p}: not a cropray score manifest (format {data.get('format')!r})")
        return cls(out, data)

    @classmethod
    def new(cls, out: Path, *, model: dict, input_root: str, signature: dict, config: dict,
            inputs: dict | None = None) -> Manifest:
        data = {"format": FORMAT, "state": "running", "model": model, "input": input_root,
                "signature": signature, "config": config, "inputs": inputs or {}, "units": {}, "files": [],
                "totals": {},
                "duplicates": None, "runs": [], "versions": versions()}
        return cls(out, data)

    # -- resumption -------------------------------------------------------------------------------
    def check_resumable(self, model: dict, signature: dict, units, inputs: dict | None = None) -> None:
        """Refuse (exit 2) to mix outputs of another model, another output schema or changed inputs.

        `inputs`: file -> fingerprint now (Plan.fingerprints); a file with committed units whose
        size, mtime or footer differs from the one recorded is refused by name.
        """
        old = self.data["model"]
        if old.get("bundle_sha256") != model["bundle_sha256"]:
            raise CroprayError(
                f"{self.out} holds scores of model {old.get('model_id')} (bundle sha256 {str(old.get('bundle_sha256'))[:12]}), "
                f"not {model['model_id']}; use another output directory or --overwrite to replace them"
            )
        old_sig = self.data.get("signature") or {}
        diff = [k for k in signature if old_sig.get(k) != signature[k]]
        if diff:
            was = "; ".join(f"{k}: {old_sig.get(k)} now {signature[k]}" for k in diff)
            raise CroprayError(
                f"{self.out} was written with other settings ({was}); use the same --keep / --unit-rows "
                "(and crop_id types), another output directory, or --overwrite"
            )
        self._check_inputs(inputs or {})
        planned = {u.key: u for u in units}
        for key, rec in self.data["units"].items():
            if rec.get("status") != "done":
                continue
            u = planned.get(key)
            if u is None or [u.rg_start, u.rg_stop] != rec["row_groups"] or u.rows != rec["rows"]:
                raise CroprayError(
                    f"{rec['file']} changed or disappeared since {self.out} was written (unit {key}); "
                    "rerun with --overwrite to score the archive again"
                )

    def _check_inputs(self, inputs: dict) -> None:
        old = self.data.get("inputs") or {}  # absent in manifests written before fingerprints
        scored = {r["file"] for r in self.data["units"].values() if r.get("status") == "done"}
        for uri in sorted(scored & set(old)):
            was, now = old[uri], inputs.get(uri)
            if now is None:
                continue  # gone or unreadable now: the unit check below names it
            labels = {"size": f"size {was.get('size')} -> {now.get('size')} bytes", "footer_sha256": "Parquet footer",
                      "mtime_ns": "modification time"}
            changed = ", ".join(label for k, label in labels.items() if was.get(k) != now.get(k))
            if changed:
                raise CroprayError(
                    f"{uri} changed since {self.out} scored it ({changed}): its scores there may be stale; "
                    "restore the file, or rerun with --overwrite to score the archive again"
                )
        self.data["inputs"] = {**old, **inputs}

    def done_keys(self) -> set[str]:
        return {k for k, r in self.data["units"].items() if r.get("status") == "done"}

    def rows_done(self, keys) -> int:
        """Rows read by those of the units `keys` that are committed."""
        units = self.data["units"]
        return sum(units[k]["rows"] for k in keys if units.get(k, {}).get("status") == "done")

    # -- updates ----------------------------------------------------------------------------------
    def resume_with(self, config: dict) -> None:
        """A resumed run records its own settings (the resumability checks passed)."""
        self.data["config"] = config

    def forget_unfinished(self) -> None:
        """Drop the records of units that failed or never finished: this run tries them again."""
        units = self.data["units"]
        for key in [k for k, r in units.items() if r.get("status") != "done"]:
            del units[key]

    def record_unit(self, key: str, record: dict) -> None:
        self.data["units"][key] = record

    def record_duplicates(self, duplicates: dict) -> None:
        """crop_ids seen more than once over the committed output (cropray.scoring.dups)."""
        self.data["duplicates"] = duplicates

    def record_on_disk(self, scores: int, quarantine: int) -> None:
        """Rows counted in the committed files: the totals reconcile only if they match the records."""
        t = self.data["totals"]
        t["rows_on_disk"] = {"scores": scores, "quarantine": quarantine}
        t["reconciled"] &= (scores, quarantine) == (t["rows_scored"], t["rows_quarantined"])

    def finish_run(self, run: dict) -> None:
        """Append this run's record and set the state from the totals (summarize first)."""
        totals = self.data["totals"]
        self.data["runs"].append(run)
        complete = totals["files_pending"] == 0 and totals["files_failed"] == 0
        self.data["state"] = "complete" if complete else "incomplete"
        self.data["throughput_crops_per_s"], self.data["wall_s"] = run.get("crops_per_s"), run.get("wall_s")

    def result(self) -> ScoreResult:
        """The typed summary of the output (totals) and of the last run."""
        return ScoreResult.from_manifest(self.data)

    def summarize(self, plan) -> dict:
        """Recompute `files` and `totals` from the unit records and the plan's pre-checks."""
        units = self.data["units"]
        files, reasons = [], Counter()
        tot = Counter()
        for f in plan.files:
            recs = [units.get(k, {}) for k in f.units]
            if f.error:
                status, error = "failed", f.error
            elif any(r.get("status") == "failed" for r in recs):
                status, error = "failed", next(r["error"] for r in recs if r.get("status") == "failed")
            elif all(r.get("status") == "done" for r in recs):
                status, error = "done", None
            else:
                status, error = "pending", None
            done = [r for r in recs if r.get("status") == "done"]
            entry = {"file": f.uri, "rows": f.rows, "status": status, "error": error, "units": len(f.units),
                     "read": sum(r["rows"] for r in done), "scored": sum(r["scored"] for r in done),
                     "quarantined": sum(r["quarantined"] for r in done), "positives": sum(r["positives"] for r in done)}
            files.append(entry)
            tot[f"files_{status}"] += 1
            for k in ("read", "scored", "quarantined", "positives"):
                tot[k] += entry[k]
            for r in done:
                reasons.update(r.get("reasons", {}))
        totals = {"files": len(plan.files), "files_done": tot["files_done"], "files_failed": tot["files_failed"],
                  "files_pending": tot["files_pending"], "rows_read": tot["read"], "rows_scored": tot["scored"],
                  "rows_quarantined": tot["quarantined"], "positives": tot["positives"], "reasons": dict(reasons),
                  "reconciled": all(e["read"] == e["scored"] + e["quarantined"] for e in files)
                  and tot["read"] == tot["scored"] + tot["quarantined"]}
        self.data["files"], self.data["totals"] = files, totals
        return totals

    def save(self, force: bool = False, plan=None) -> None:
        """Write atomically if `force` or `interval_s` passed since the last write (files/totals
        recomputed from `plan` first when given)."""
        now = time.monotonic()
        if force or now - self._saved_at >= self.interval_s:
            if plan is not None:
                self.summarize(plan)
            self.data["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            atomic_write_json(self.path, self.data)
            self._saved_at = now
