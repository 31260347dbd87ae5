"""The issue-12 levers measured in one bench run: what `auto` measures and picks, and the cascade.

auto: the scorer `cropray score` would build here (probe.py: every uncompiled candidate timed for a
sub-second, a compile charged against the rows), with a fresh probe cache, next to the fastest path
the forward table measured within the 0.1% flip rule.

cascade (fastpath/cascade.py): for each positive fraction, a synthetic archive at the generator's
default SNR range scored by the auto scorer alone and behind the cascade, timed interleaved (median
of rounds); recall lost = labelled positives the scorer flags that the cascade rules out. Two cuts:
the one scoring can set (the bundle's calibration crops, the model's decisions) and one set on
labelled crops (true positives the model flags, 0.1% rank bound) -- the best a train-time cut could do.
"""

from __future__ import annotations

import time

import numpy as np

from cropray.fastpath import build_scorer
from cropray.fastpath.cascade import CascadeScorer, calibrate, track_stat

FRACTIONS = (0.5, 0.1, 0.01)


def auto_choice(model, *, threshold: float, calibration, expected_rows: int, bundle=None) -> dict:
    """What auto builds for this model here: path, build seconds and the probe's figures. With a
    `bundle` (carrying a quality record, bench/quality.py) it is built as `cropray score` would."""
    t0 = time.perf_counter()
    s = (build_scorer(bundle, expected_rows=expected_rows) if bundle is not None else
         build_scorer(model, threshold=threshold, calibration=calibration, expected_rows=expected_rows))
    d = s.describe()
    return {"path": d["path"], "build_s": round(time.perf_counter() - t0, 2), "probe": d.get("probe"),
            "fallbacks": d["fallbacks"], "skipped": d["skipped"], "export_s": d.get("export_s"),
            "threshold": d["threshold"], "threshold_source": d.get("threshold_source"),
            "admissible": d.get("admissible")}, s


def _rates(fns: dict, x: np.ndarray, rounds: int, batch: int = 1024) -> dict:
    out = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            t0 = time.perf_counter()
            for i in range(0, len(x), batch):
                f(x[i:i + batch])
            out[k].append(len(x) / (time.perf_counter() - t0))
    return {k: float(np.median(v)) for k, v in out.items()}


def _lost(plain: np.ndarray, got: np.ndarray, y: np.ndarray, thr: float) -> dict:
    tp = (plain >= thr) & (y == 1)
    lost = tp & (got < thr)
    return {"true_positives": int(tp.sum()), "lost": int(lost.sum()),
            "recall_lost": float(lost.sum() / max(1, tp.sum())),
            "flips_vs_plain": int(np.count_nonzero((plain >= thr) != (got >= thr)))}


def measure_cascade(tm, scorer, *, n: int, rounds: int, seed: int, log) -> dict:
    """Speed-up and recall lost of the cascade by positive fraction (see the module doc)."""
    from cropray.synth import SynthConfig, generate

    thr = tm.threshold
    cal = tm.calibration_crops
    s_cal = scorer(cal)
    cuts = {"calibration": calibrate(track_stat(cal), s_cal >= thr, s_cal, thr)}
    lab = generate(max(2000, n), SynthConfig(), seed=seed + 31)  # labelled, default SNR range, half positive
    xl = lab.crops[:, None].astype(np.float32)
    sl = scorer(xl)
    cuts["labelled"] = calibrate(track_stat(xl), (lab.label == 1) & (sl >= thr), sl, thr, source="labelled crops")
    out = {"cuts": {k: c and c.to_dict() for k, c in cuts.items()}, "by_positive_fraction": []}
    x_stat = xl[:min(len(xl), 2048)]
    out["stat_crops_per_s"] = _rates({"stat": track_stat}, x_stat, rounds)["stat"]
    for f in FRACTIONS:
        b = generate(n, SynthConfig(positive_fraction=f), seed=seed + int(1000 * f))
        x, y = b.crops[:, None].astype(np.float32), b.label
        fns = {"plain": scorer, **{k: CascadeScorer(scorer, c) for k, c in cuts.items() if c is not None}}
        rates = _rates(fns, x, rounds)
        plain = scorer(x)
        row = {"positive_fraction": f, "n": n, "plain_crops_per_s": rates["plain"]}
        for k in cuts:
            if k not in rates:
                continue
            c = CascadeScorer(scorer, cuts[k])
            got = c(x)
            row[k] = {"crops_per_s": rates[k], "speedup": rates[k] / rates["plain"],
                      "skipped_fraction": c.skipped / max(1, c.rows), **_lost(plain, got, y, thr)}
        out["by_positive_fraction"].append(row)
        log(f"  cascade at {f:.0%} positives: plain {rates['plain']:.0f} crops/s; " + "; ".join(
            f"{k} cut {row[k]['speedup']:.2f}x, {row[k]['skipped_fraction']:.1%} skipped, recall lost "
            f"{row[k]['recall_lost']:.2%}" for k in cuts if k in row))
    return out
