"""What a bundle records about its execution paths' quality, torch-free (manifest schema).

Path-aware cross-validation (`cropray.train.path_cv`) scores every fold's held-out crops through
each execution path with that fold's model, so each path gets its own out-of-fold ROC-AUC (95%
bootstrap interval), recall at 1% FPR and calibrated threshold. A path is *admissible* for scoring when
its CV ROC-AUC is at least the lower end of the fp32 interval: reduced precision is judged by the
quality it reaches, not by how many decisions it shares with fp32 (flips are kept as information).

`ExecutionPaths` is the typed manifest field (`BundleManifest.execution_paths`); `from_dict` validates
what a manifest holds (BundleError naming the file). A bundle without it: fp32 only, as before.

`onnx_fp32` is fp32 and is refused at every build unless it matches the eager model within 1e-4, so
`fold_cl`'s fp32 scores stand for it (`MEASURED_AS`); `onnx_int8` (each fold's graph quantized on that
fold's training crops) and `cuda_amp` (bf16 autocast on a GPU) are measured themselves. Names of runtimes
that older cropray versions recorded (`LEGACY`) are still read, never admissible.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from cropray.errors import BundleError

REFERENCE = "eager"  # the fp32 model as trained: its out-of-fold scores are the bundle's CV metrics
# run-time path -> the path whose cross-validated scores stand for it
MEASURED_AS = {"onnx_fp32": "fold_cl"}
# the runtimes of cropray.fastpath.specs.PATHS (a test keeps them equal; this module stays below fastpath)
RUNTIMES = ("eager", "fold_cl", "onnx_fp32", "onnx_int8", "cuda_amp", "numpy")
LEGACY = ("bf16", "compile_fp32", "compile_bf16", "int8")  # recorded by older cropray: read, never admissible
RULE = "admissible: CV ROC-AUC >= the lower end of the fp32 (eager) 95% bootstrap interval"


@dataclass(frozen=True)
class PathQuality:
    """One path's out-of-fold quality. status "ok", or "failed" with `reason` (nothing else set)."""

    status: str
    roc_auc: dict | None = None  # {"value", "lo", "hi"}: lo/hi None without a bootstrap
    recall_at_1pct_fpr: dict | None = None  # {"value", "lo", "hi"}
    threshold: float | None = None  # Youden's J on this path's out-of-fold scores
    flips_vs_fp32: int | None = None  # decisions at the fp32 threshold differing from fp32's (information)
    max_abs_diff: float | None = None  # max |score - fp32 score| over the out-of-fold crops
    n: int = 0
    seconds: float = 0.0  # building + scoring this path over every fold
    measured: str = ""  # how (e.g. "int8 PT2E q/dq reference, calibrated on each fold's training part")
    reason: str = ""

    @property
    def auc(self) -> float | None:
        return None if self.roc_auc is None else self.roc_auc["value"]


@dataclass(frozen=True)
class ExecutionPaths:
    """Every measured path's quality, the fp32 interval and the admissible run-time paths."""

    interval: tuple[float, float]  # fp32 (eager) CV ROC-AUC 95% interval
    paths: dict[str, PathQuality]  # measured path name -> quality (REFERENCE included)
    admissible: tuple[str, ...]  # run-time path names (MEASURED_AS twins included), in RUNTIMES order
    k: int = 0
    seconds: float = 0.0  # what path-aware CV added to training
    rule: str = RULE
    notes: tuple[str, ...] = field(default_factory=tuple)

    def quality_of(self, path: str) -> PathQuality | None:
        """The measured quality that stands for run-time path `path` (None: not measured)."""
        return self.paths.get(path) or self.paths.get(MEASURED_AS.get(path, path))

    def threshold_for(self, path: str) -> float | None:
        """The threshold calibrated on `path`'s own out-of-fold scores (None: not measured)."""
        q = self.quality_of(path)
        return None if q is None or q.status != "ok" else q.threshold

    def why_not(self, path: str) -> str:
        """Why `path` is not admissible (for describe()'s skipped list)."""
        q = self.quality_of(path)
        if q is None:
            return "not measured by path-aware cross-validation when the bundle was trained"
        if q.status != "ok":
            return f"could not be cross-validated: {q.reason}"
        lo = self.interval[0]
        return f"CV ROC-AUC {q.auc:.4f} below the fp32 interval [{lo:.4f}, {self.interval[1]:.4f}]"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["interval"] = list(self.interval)
        d["admissible"] = list(self.admissible)
        d["notes"] = list(self.notes)
        return d

    @classmethod
    def from_dict(cls, raw, where) -> ExecutionPaths:
        """Validate a manifest's `execution_paths` object; BundleError naming `where` otherwise."""
        if not isinstance(raw, dict):
            raise BundleError(f"{where}: 'execution_paths' must be a JSON object")
        _keys(raw, {f for f in cls.__dataclass_fields__}, {"interval", "paths", "admissible"},
              f"{where}: execution_paths")
        iv = raw["interval"]
        if not (isinstance(iv, list) and len(iv) == 2 and all(_unit(v) for v in iv) and iv[0] <= iv[1]):
            raise BundleError(f"{where}: execution_paths.interval {iv!r} must be [lo, hi] with 0 <= lo <= hi <= 1")
        if not isinstance(raw["paths"], dict) or REFERENCE not in raw["paths"]:
            raise BundleError(f"{where}: execution_paths.paths must be an object holding {REFERENCE!r}")
        paths = {name: _path(name, q, f"{where}: execution_paths.paths.{name}") for name, q in raw["paths"].items()}
        adm = raw["admissible"]
        if not isinstance(adm, list) or not all(isinstance(a, str) for a in adm):
            raise BundleError(f"{where}: execution_paths.admissible must be a list of path names")
        out = cls(interval=(float(iv[0]), float(iv[1])), paths=paths, admissible=tuple(adm),
                  k=_int(raw.get("k", 0), f"{where}: execution_paths.k"),
                  seconds=_num(raw.get("seconds", 0.0), f"{where}: execution_paths.seconds"),
                  rule=_str(raw.get("rule", RULE), f"{where}: execution_paths.rule"),
                  notes=tuple(_str(n, f"{where}: execution_paths.notes") for n in _list(raw.get("notes", []), where)))
        for a in out.admissible:  # legacy names stay (the digest covers them); no runtime asks for them
            q = out.quality_of(a)
            if a not in RUNTIMES + LEGACY:
                raise BundleError(f"{where}: execution_paths.admissible names {a!r}, not a path this cropray knows "
                                  f"({', '.join(RUNTIMES)})")
            if q is None or q.status != "ok" or q.auc < out.interval[0]:
                raise BundleError(f"{where}: execution_paths.admissible lists {a!r}, but {out.why_not(a)}")
        return out


def admissible_paths(interval: tuple[float, float], paths: dict[str, PathQuality]) -> tuple[str, ...]:
    """Run-time paths (RUNTIMES order) whose measured stand-in is ok with ROC-AUC >= the interval's lo."""
    def ok(name: str) -> bool:
        q = paths.get(name) or paths.get(MEASURED_AS.get(name, name))
        return q is not None and q.status == "ok" and q.auc is not None and q.auc >= interval[0]

    return tuple(n for n in RUNTIMES if ok(n))


def _path(name: str, q, where: str) -> PathQuality:
    if name not in RUNTIMES + LEGACY:
        raise BundleError(f"{where}: {name!r} is not a path this cropray knows ({', '.join(RUNTIMES)})")
    if not isinstance(q, dict):
        raise BundleError(f"{where}: must be a JSON object")
    _keys(q, set(PathQuality.__dataclass_fields__), {"status"}, where)
    status = q["status"]
    if status not in ("ok", "failed"):
        raise BundleError(f"{where}.status {status!r} must be 'ok' or 'failed'")
    kw = {"status": status, "n": _int(q.get("n", 0), f"{where}.n"), "seconds": _num(q.get("seconds", 0.0), f"{where}.seconds"),
          "measured": _str(q.get("measured", ""), f"{where}.measured"), "reason": _str(q.get("reason", ""), f"{where}.reason")}
    if status == "ok":
        kw["roc_auc"] = _interval_metric(q.get("roc_auc"), f"{where}.roc_auc")
        kw["recall_at_1pct_fpr"] = _interval_metric(q.get("recall_at_1pct_fpr"), f"{where}.recall_at_1pct_fpr")
        kw["threshold"] = _num(q.get("threshold"), f"{where}.threshold")
        kw["flips_vs_fp32"] = _int(q.get("flips_vs_fp32", 0), f"{where}.flips_vs_fp32")
        kw["max_abs_diff"] = _num(q.get("max_abs_diff", 0.0), f"{where}.max_abs_diff")
    return PathQuality(**kw)


def _interval_metric(m, where: str) -> dict:
    if not isinstance(m, dict) or set(m) != {"value", "lo", "hi"} or not _unit(m["value"]):
        raise BundleError(f"{where} {m!r} must be {{'value', 'lo', 'hi'}} with value in [0, 1]")
    for k in ("lo", "hi"):
        if m[k] is not None and not _unit(m[k]):
            raise BundleError(f"{where}.{k} {m[k]!r} must be null or in [0, 1]")
    return {"value": float(m["value"]), "lo": None if m["lo"] is None else float(m["lo"]),
            "hi": None if m["hi"] is None else float(m["hi"])}


def _keys(raw: dict, allowed: set, required: set, where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise BundleError(f"{where}: unknown key(s) {', '.join(unknown)} (not written by cropray)")
    missing = sorted(required - set(raw))
    if missing:
        raise BundleError(f"{where}: required key(s) {', '.join(missing)} missing")


def _unit(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) and 0.0 <= v <= 1.0


def _num(v, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise BundleError(f"{where} {v!r} must be a finite number")
    return float(v)


def _int(v, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise BundleError(f"{where} {v!r} must be an integer >= 0")
    return v


def _str(v, where: str) -> str:
    if not isinstance(v, str):
        raise BundleError(f"{where} {v!r} must be a string")
    return v


def _list(v, where) -> list:
    if not isinstance(v, list):
        raise BundleError(f"{where}: execution_paths.notes must be a list of strings")
    return v
