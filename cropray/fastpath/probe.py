"""How `auto` chooses a path: by measuring the candidates on this machine, not by a ranking (issue 12).

A static ranking measured on one CPU did not hold on the next (compiled bf16 ran *below* uncompiled
fp32 on a Xeon without AMX, after a 70 s compile). So:

1. Every uncompiled candidate (fold_cl, bf16, onnx_fp32, onnx_int8: each builds in about a second) is built,
   accuracy-guarded as before, and timed on the warm-up batch, round-robin so that a load spike on a
   shared machine hits all of them alike (`PROBE_S` of timing per path, median of the calls).
2. A compiled candidate is charged its compile against the rows this scorer will see: it is built
   only when `compile_s + rows / rate` beats `rows / best_uncompiled_rate`. Its rate and compile time
   come from the cache when a previous run measured them here; otherwise from an optimistic guess
   (`EXPLORE_GAIN` x the best uncompiled rate, `EXPLORE_COMPILE_S`), and once compiled it is timed
   like the others and kept only if it is actually faster. At most one compile per build.
3. What was measured is cached (`cache_path()`, JSON) per CPU model, threads, batch, versions and
   model weights (a bundle's hash changes with them): the next actor on this machine builds only
   the cached winner, with no probe and no wasted compile.

Rows: `expected_rows` (the pipeline passes each actor's share); unknown rows count as
`ASSUMED_ROWS`. `CROPRAY_PROBE=0` turns probing off (the candidates' order decides, as before).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from cropray.fastpath.graph_cache import cpu_model  # torch-free: the warm start keys on it too

log = logging.getLogger("cropray.fastpath")

PROBE_S = 0.25  # timed seconds per path (plus one warm call each): a sub-second probe
MIN_CALLS = 3
ASSUMED_ROWS = 100_000  # rows charged when the caller does not say (a notebook's build_scorer(model))
EXPLORE_COMPILE_S = {"fp32": 15.0, "bf16": 25.0, "int8": 40.0}  # pessimistic first-compile costs here
EXPLORE_GAIN = {"fp32": 1.2, "bf16": 2.0, "int8": 2.5}  # optimistic speed-up over the best uncompiled
CACHE_VERSION = 1
MAX_AGE_S = 30 * 86400


def enabled() -> bool:
    return os.environ.get("CROPRAY_PROBE", "1").lower() not in ("0", "false", "off")


def cache_path() -> Path:
    """$CROPRAY_CACHE_DIR/probe.json, else $XDG_CACHE_HOME/cropray/probe.json, else ~/.cache/cropray/."""
    base = os.environ.get("CROPRAY_CACHE_DIR")
    if not base:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cropray"
    return Path(base) / "probe.json"


def model_hash(model: torch.nn.Module) -> str:
    """sha256 over the state dict (names, shapes, bytes): a bundle's weights, or a plain module's."""
    h = hashlib.sha256(type(model).__name__.encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def cache_key(model, *, device: str, batch: int) -> str:
    try:
        import onnxruntime

        ort_v = onnxruntime.__version__
    except ImportError:
        ort_v = None
    parts = {"cpu": cpu_model(), "threads": torch.get_num_threads(), "batch": batch, "device": device,
             "torch": torch.__version__, "ort": ort_v, "model": model_hash(model), "v": CACHE_VERSION}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def load_entry(key: str) -> dict:
    """{path name: {"crops_per_s", "compile_s"?}} measured before under `key` ({} when none or stale)."""
    try:
        data = json.loads(cache_path().read_text())
        e = data.get(key) or {}
        if time.time() - float(e.get("t", 0)) > MAX_AGE_S:
            return {}
        return {k: v for k, v in (e.get("paths") or {}).items() if isinstance(v, dict)}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}  # an unreadable cache is a cold cache, never an error


def save_entry(key: str, paths: dict) -> None:
    """Merge `paths` into the cache entry (atomic replace; concurrent actors may lose a write: harmless)."""
    p = cache_path()
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        try:
            data = json.loads(p.read_text())
            data = data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            data = {}
        entry = data.get(key) if isinstance(data.get(key), dict) else {}
        merged = {**(entry.get("paths") or {}), **paths}
        data[key] = {"t": time.time(), "cpu": cpu_model(), "paths": merged}
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".probe-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, p)
    except OSError as e:  # a read-only home must not stop scoring
        log.warning("fastpath: probe cache %s not written (%s)", p, e)


def time_runners(runners: dict, example: torch.Tensor) -> dict[str, float]:
    """{name: median crops/s} of warm runners on `example` (B,1,H,W), timed round-robin."""
    per: dict[str, list[float]] = {n: [] for n in runners}
    spent = dict.fromkeys(runners, 0.0)
    b = example.shape[0]
    with torch.inference_mode():
        for r in runners.values():
            r(example)  # a warm call each (first-call allocations, ORT arenas)
        while any(spent[n] < PROBE_S or len(per[n]) < MIN_CALLS for n in runners):
            for n, r in runners.items():
                if spent[n] >= PROBE_S and len(per[n]) >= MIN_CALLS:
                    continue
                t0 = time.perf_counter()
                r(example)
                if example.is_cuda:  # kernels run asynchronously: time the work, not the launch
                    torch.cuda.synchronize()
                dt = time.perf_counter() - t0
                spent[n] += dt
                per[n].append(b / max(dt, 1e-9))
    return {n: float(np.median(v)) for n, v in per.items()}


def _seconds(rows: int, rate: float, compile_s: float = 0.0) -> float:
    return compile_s + rows / max(rate, 1e-9)


def choose(chooser, specs: list, *, key: str, expected_rows: int | None) -> tuple:
    """(spec, runner, built, guard, report): the fastest accepted path for `expected_rows` rows.

    chooser: scorer._Chooser (builds + guards a path, records fallbacks). CroprayError (from the
    chooser) when no path builds at all."""
    rows = int(expected_rows) if expected_rows else ASSUMED_ROWS
    cached = load_entry(key)
    report: dict = {"rows_charged": rows, "cache": str(cache_path()), "cache_hit": False, "measured": {},
                    "cached": cached, "skipped_compiles": []}
    plain = [s for s in specs if not s.compiled]
    compiled = [s for s in specs if s.compiled]
    # Cache hit: every uncompiled candidate has a figure (or a rejection) here -> build only the winner.
    if plain and all(s.name in cached for s in plain):
        report["cache_hit"] = True
        for s in plain:
            if "crops_per_s" not in cached[s.name]:
                chooser._reject(s, f"rejected when probed before (cached): {cached[s.name].get('rejected')}")
        plain = sorted((s for s in plain if "crops_per_s" in cached[s.name]),
                       key=lambda s: -float(cached[s.name]["crops_per_s"]))
    built: dict = {}
    if report["cache_hit"]:
        for s in plain:
            got = chooser._try(s)
            if got is not None:
                built[s.name] = (s, *got)
                break  # the fastest cached path that still builds and passes its guard
        rates = {n: float(cached[n]["crops_per_s"]) for n in built}
    else:
        built, rates = _probe_plain(chooser, plain)
    if not built and not compiled:
        return (*chooser.first_accepted([]), report)  # raises CroprayError naming every path
    report["measured"] = {} if report["cache_hit"] else dict(rates)
    best = max(rates, key=rates.get, default=None)
    best_rate = rates.get(best, 0.0)
    pick = _compile_if_it_pays(chooser, compiled, cached, best_rate, rows, report)
    compile_s = {}
    if pick is not None:
        name, entry = pick
        # timed side by side with the best uncompiled runner: the same load on both
        pair = {name: entry[1], **({best: built[best][1]} if best else {})}
        both = time_runners(pair, chooser.example)
        rates.update(both)
        report["measured"].update(both)
        best_rate, rate, compile_s[name] = both.get(best, 0.0), both[name], entry[2].get("compile_s")
        if best is None or rate > best_rate:
            built[name], best = entry, name
        else:
            report["skipped_compiles"].append({"path": name, "reason": f"compiled {rate:.0f} crops/s, not faster "
                                               f"than {best} {best_rate:.0f}"})
    if best is None:  # nothing uncompiled built and the compiled candidates did not either
        return (*chooser.first_accepted([]), report)
    if not report["cache_hit"] or pick is not None:
        names = {s.name for s in plain} if not report["cache_hit"] else set()
        entry = {f["path"]: {"rejected": f["reason"][:300]} for f in chooser.fallbacks if f["path"] in names}
        entry.update({n: {"crops_per_s": round(r, 1), **({"compile_s": compile_s[n]} if compile_s.get(n) else {})}
                      for n, r in rates.items()})
        save_entry(key, entry)
    report["chosen"] = best
    report["expected_s"] = round(_seconds(rows, rates[best], built[best][2].get("compile_s") or 0.0), 1)
    spec, runner, info, g = built[best]
    return spec, runner, info, g, report


def _probe_plain(chooser, plain: list) -> tuple[dict, dict]:
    """Build every uncompiled candidate, time them, then run the accuracy guard on the fastest only
    (next fastest when it fails): the guard's fp32 reference over the calibration crops costs more
    than the probe itself (1-5 s per actor on 2 shared cores), so it is spent on the path that won."""
    from cropray.fastpath.policy import GUARD_CROPS
    from cropray.fastpath.scorer import _guard

    guarded, chooser.guarded = chooser.guarded, False
    try:
        built = {}
        for s in plain:
            got = chooser._try(s)  # builds; no guard yet
            if got is not None:
                built[s.name] = (s, *got)
    finally:
        chooser.guarded = guarded
    rates = time_runners({n: b[1] for n, b in built.items()}, chooser.example)
    for name in sorted(rates, key=rates.get, reverse=True):
        s, runner, info, _ = built[name]
        if not guarded or s.precision == "fp32":
            break
        g = _guard(chooser.model, runner, s, chooser.calib[:GUARD_CROPS].to(chooser.device), chooser.threshold)
        chooser._checked.setdefault(s.precision, g)  # what a compiled path of this precision is pre-checked by
        if g["ok"]:
            built[name] = (s, runner, info, g)
            break
        chooser._reject(s, f"accuracy guard: {g}")
        del built[name], rates[name]
    return built, rates


def _compile_if_it_pays(chooser, compiled: list, cached: dict, best_rate: float, rows: int, report: dict):
    """Build (at most) the one compiled path whose charged compile pays back the most; None if none does.
    Returns (name, (spec, runner, built, guard)) or None."""
    plans = []
    for s in compiled:
        c = cached.get(s.name)
        rate = float(c["crops_per_s"]) if c else EXPLORE_GAIN[s.precision] * best_rate
        cost = float(c.get("compile_s") or EXPLORE_COMPILE_S[s.precision]) if c else EXPLORE_COMPILE_S[s.precision]
        saved = _seconds(rows, best_rate) - _seconds(rows, rate, cost) if best_rate else float("inf")
        how = "measured here before" if c else "guessed"
        if saved > 0:
            plans.append((saved, s, rate, cost, bool(c)))
        elif rate <= best_rate:
            report["skipped_compiles"].append({"path": s.name, "reason": f"compiled {rate:.0f} crops/s ({how}) is "
                                               f"not faster than the best uncompiled path ({best_rate:.0f})"})
        else:
            need = cost / (1 / best_rate - 1 / rate)
            report["skipped_compiles"].append({
                "path": s.name, "reason": f"~{rows:,} rows for this scorer: compiling pays back only from "
                f"~{need:,.0f} ({how}: {rate:.0f} crops/s after ~{cost:.0f} s vs {best_rate:.0f} uncompiled)"})
    for _saved, s, _rate, _cost, _was_cached in sorted(plans, key=lambda p: -p[0]):
        # the (memoized) uncompiled check of a reduced precision only for a compile that would pay
        if chooser.guarded and s.precision != "fp32" and chooser._precheck(s.precision)["ok"] is False:
            chooser._reject(s, f"accuracy pre-guard ({s.precision}, uncompiled): {chooser._checked[s.precision]}")
            continue
        got = chooser._try(s)  # at most one compile per build
        return None if got is None else (s.name, (s, *got))
    return None
