"""`run_bench(cfg, workdir)`: every figure of `cropray bench` from one run, as one JSON-able dict."""

from __future__ import annotations

import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
import torch

from cropray.bench.config import BenchConfig
from cropray.bench.e2e import end_to_end, naive_baseline
from cropray.bench.forward import held_out_quality, measure_path, reference_scores, time_scorer
from cropray.bench.peak import flops_per_crop, matmul_peak
from cropray.bench.quality import bundle_with_record, record_from_accuracy
from cropray.bench.trained import BENCH_SNR, synth_xy, train_briefly
from cropray.errors import ConfigError
from cropray.fastpath import build_scorer
from cropray.fastpath.isa import isa
from cropray.models.policy import reference_arch

E2E_ARCH = reference_arch()  # the seed's design (SignalClassifier): the naive baseline's model and the e2e bundle
TARGETS = {"e2e_over_naive": 10.0, "e2e_over_forward_same_path": 0.85, "memory_growth_at_scale": 1.15}


def machine_info() -> dict:
    model = next((ln.split(":", 1)[1].strip() for ln in _read("/proc/cpuinfo").splitlines()
                  if ln.startswith("model name")), platform.processor())
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] \
        if torch.cuda.is_available() else []
    return {"cpu": model, "logical_cpus": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "isa": isa(), "gpus": gpus,
            "cuda": torch.version.cuda if gpus else None, "loadavg_start": list(os.getloadavg())}


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _best(rows: list[dict], **match) -> dict | None:
    ok = [r for r in rows if r.get("status") == "ok" and all(r.get(k) == v for k, v in match.items())]
    return max(ok, key=lambda r: r["crops_per_s"], default=None)


def run_bench(cfg: BenchConfig, workdir: Path, log=print) -> dict:
    """Run every measurement of `cfg` (archives, bundles and outputs go under `workdir`)."""
    if cfg.device == "cuda" and not torch.cuda.is_available():
        built = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU build"
        raise ConfigError(f"cuda requested, but CUDA is not available to torch {torch.__version__} here ({built})",
                          field="device")
    t_start = time.perf_counter()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    # int8 graphs are quantized afresh in this run, in-process and in the e2e actors
    os.environ.setdefault("CROPRAY_CACHE_DIR", str(workdir / "graph-cache"))
    threads = torch.get_num_threads()
    res: dict = {"config": cfg.to_dict(), "machine": machine_info(), "phases_s": {}}
    mark = [time.perf_counter()]

    def phase(name: str) -> None:  # wall seconds per phase: where a slow run spent its time
        now = time.perf_counter()
        res["phases_s"][name] = round(res["phases_s"].get(name, 0.0) + now - mark[0], 2)
        mark[0] = now
    log(f"matmul peak on {threads} threads ...")
    peak = res["peak"] = matmul_peak(rounds=3 if cfg.quick else 5, min_s=0.1 if cfg.quick else 0.2)
    phase("peak")

    # (n_acc,1,64,64) labelled crops never trained on: each path's agreement with fp32 (flips) and its own
    # held-out ROC-AUC (a held-out labelled set, not k-fold: bench models are trained briefly, once)
    x_acc, y_acc = synth_xy(cfg.n_accuracy, seed=cfg.seed + 101)
    x_time = x_acc[:cfg.forward_crops] if len(x_acc) >= cfg.forward_crops else synth_xy(cfg.forward_crops, 5)[0]
    res["models"], res["forward"], res["accuracy"] = {}, [], []
    trained, refs = {}, {}
    for arch in dict.fromkeys([*cfg.archs, E2E_ARCH]):
        log(f"{arch}: training briefly ({cfg.train_seconds:g}s) ...")
        tm = trained[arch] = train_briefly(arch, seconds=cfg.train_seconds, max_steps=10_000, seed=cfg.seed,
                                           n_train=cfg.train_crops)
        phase("train")
        if arch in cfg.archs:
            _measure_arch(arch, tm, cfg, res, refs, x_acc=x_acc, y_acc=y_acc, x_time=x_time, peak=peak,
                          workdir=workdir, log=log, phase=phase)
    res["auto"] = _auto_report(res, trained, cfg, log)
    phase("auto")
    bundle = _bundles.pop(E2E_ARCH, None)
    _bundles.clear()

    tm = trained[E2E_ARCH]
    res["naive"], res["end_to_end"] = _e2e(cfg, tm, workdir, log,
                                           res["auto"]["per_arch"].get(E2E_ARCH, {}).get("auto_path"), bundle)
    phase("e2e_and_naive")
    if cfg.label_free:
        res["label_free"] = _label_free(cfg, workdir, x_time, log)
        phase("label_free")
    res["ratios"], res["targets"] = _ratios(res)
    res["machine"]["loadavg_end"] = list(os.getloadavg())
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    res["wall_s"] = round(time.perf_counter() - t_start, 1)
    return res


def _measure_arch(arch, tm, cfg: BenchConfig, res: dict, refs: dict, *, x_acc, y_acc, x_time, peak, workdir,
                  log, phase) -> None:
    """One architecture's forward rows, per-path accuracy and quality record, added to `res`; its fp32
    reference scores go to refs[arch] and its bench bundle (with the quality record) to _bundles."""
    flops = flops_per_crop(tm.model)
    res["models"][arch] = {"flops_per_crop": flops, "train_steps": tm.steps, "train_s": tm.seconds,
                           "threshold": tm.threshold}
    log(f"{arch}: {flops / 1e6:.1f} MFLOP/crop; fp32 eager reference on {len(x_acc)} crops ...")
    ref = refs[arch] = reference_scores(tm.model, x_acc)
    fp32_q = held_out_quality(y_acc, ref) if len(np.unique(y_acc)) == 2 else None
    phase("reference")
    for name in cfg.paths:
        rows, acc = measure_path(tm.model, name, batch_sizes=cfg.batch_sizes, x_time=x_time, x_acc=x_acc,
                                 ref=ref, threshold=tm.threshold, calibration=tm.calibration_crops,
                                 repeats=cfg.repeats, flops=flops, peak=peak, log=log,
                                 y_acc=y_acc if fp32_q else None, fp32_quality=fp32_q, device=cfg.device)
        res["forward"] += [{"arch": arch, **r} for r in rows]
        if acc:
            res["accuracy"].append({"arch": arch, **acc})
        phase("forward")
    # the held-out AUCs as the bundle's quality record; auto and the e2e actors use it
    rec = record_from_accuracy([a for a in res["accuracy"] if a["arch"] == arch])
    _bundles[arch] = bundle_with_record(tm, rec, workdir / f"bundle-{arch}")


_bundles: dict = {}  # arch -> the bench bundle carrying its quality record (bench/quality.py)


def _auto_report(res: dict, trained: dict, cfg: BenchConfig, log) -> dict:
    """What `auto` builds on this machine, per architecture (the bench bundle with its quality record, as
    `cropray score` would), next to the fastest runtime the forward table measured within fp32's AUC."""
    out = {"isa": isa(), "device": cfg.device, "per_arch": {}}
    for arch in res["models"]:
        acc = {a["path"]: a for a in res["accuracy"] if a["arch"] == arch}
        by_auc = [p for p, a in acc.items() if a.get("auc_within_fp32")]
        best_q = max((r for r in res["forward"] if r["arch"] == arch and r.get("status") == "ok"
                      and r["path"] in by_auc), key=lambda r: r["crops_per_s"], default=None)
        tm, t0 = trained[arch], time.perf_counter()
        bundle = _bundles.get(arch)
        s = (build_scorer(bundle, device=cfg.device) if bundle is not None else
             build_scorer(tm.model, device=cfg.device, threshold=tm.threshold, calibration=tm.calibration_crops))
        d = s.describe()
        log(f"{arch}: auto -> {d['path']} (build {time.perf_counter() - t0:.1f} s; candidates "
            f"{', '.join(d['candidates'])})")
        out["per_arch"][arch] = {"auto_path": d["path"], "build_s": round(time.perf_counter() - t0, 2),
                                 "candidates": d["candidates"], "fallbacks": d["fallbacks"],
                                 "threshold_source": d.get("threshold_source"),
                                 "auto_path_auc_within_fp32": acc.get(d["path"], {}).get("auc_within_fp32"),
                                 "fastest_within_fp32_auc_measured": best_q and best_q["path"]}
    first = next(iter(out["per_arch"].values()), {})
    out["picks"] = first.get("auto_path")
    return out


def _e2e(cfg: BenchConfig, tm, workdir: Path, log, auto_pick: str | None, loaded=None) -> tuple[dict, dict]:
    from cropray.synth import synth_archive

    # the bundle with its quality record when the forward table measured this arch (bench/quality.py)
    bundle = loaded.path if loaded is not None else bundle_with_record(tm, None, workdir / "bundle").path
    precision = cfg.e2e_precision
    runs = []
    for scale in sorted({1, cfg.memory_scale}):
        n = cfg.n * scale
        arch_dir = workdir / f"archive-{n}"
        log(f"synthetic archive: {n} crops -> {arch_dir}")
        synth_archive(arch_dir, n, seed=cfg.seed + 7, snr_range=BENCH_SNR, overwrite=True)
        if scale == 1:
            log("naive baseline (pandas + eager fp32 NCHW batch-32) ...")
            naive = naive_baseline(arch_dir, tm.model, tm.threshold, workdir / "naive-scores.parquet")
            log(f"  naive: {naive['crops_per_s']:.0f} crops/s")
        log(f"end to end: cropray score (--precision {precision}) on {n} crops ...")
        r = end_to_end(bundle, arch_dir, workdir / f"scores-{n}", precision=precision, device=cfg.device,
                       rows=n, runner=cfg.runner)
        log(f"  end to end: {r['crops_per_s']} crops/s (scoring phase), {r['crops_per_s_wall']:.0f} wall; "
            f"runner {r['runner']}, {r['actors']} worker(s) ran {','.join(r['paths_used']) or '?'}; driver commit rate "
            f"{r['driver_commit_crops_per_cpu_s'] or '-'} crops per driver-thread CPU second")
        runs.append({"scale": scale, **r})
    used = runs[0].get("paths_used") or []
    e2e = {**runs[0], "precision": precision, "assumed_path": auto_pick,
           "path": used[0] if len(used) == 1 else auto_pick, "runs": runs}
    return naive, e2e


def _label_free(cfg: BenchConfig, workdir: Path, x_time: np.ndarray, log) -> dict:
    """The label-free `dedoppler` (what `auto` ships with few labels): forward crops/s of the runtime auto
    picks for it, the naive loop with its eager model and `cropray score` end to end on the e2e archive."""
    from cropray.bundle import save_bundle
    from cropray.models import build_model

    arch = "dedoppler"
    model = build_model(arch).eval()
    s = build_scorer(model, device=cfg.device, threshold=0.0, calibration=x_time[:64])
    thr = float(np.median(s(x_time)))  # any threshold times the same; the median flags half
    rates = time_scorer(s, x_time, 256, cfg.repeats)
    out = {"arch": arch, "path": s.describe()["path"], "forward_crops_per_s": float(np.median(rates))}
    log(f"{arch}: {out['path']} {out['forward_crops_per_s']:.0f} crops/s forward")
    bundle = save_bundle(model, workdir / "bundle-dedoppler", threshold=thr, train_summary={}, metrics={},
                         calibration_crops=x_time[:64], overwrite=True)
    archive = workdir / f"archive-{cfg.n}"
    naive = naive_baseline(archive, model, thr, workdir / "naive-dedoppler.parquet")
    log(f"  naive ({arch}, eager batch 32): {naive['crops_per_s']:.0f} crops/s")
    r = end_to_end(bundle, archive, workdir / "scores-dedoppler", precision="auto", device=cfg.device,
                   rows=cfg.n, runner=cfg.runner)
    out.update(e2e_crops_per_s=r.get("crops_per_s"), e2e_crops_per_s_wall=r["crops_per_s_wall"],
               e2e_first_block_s=r.get("first_block_s"), e2e_steady_crops_per_s=r.get("steady_crops_per_s"),
               e2e_paths_used=r.get("paths_used"), e2e_actors=r.get("actors"), e2e_runner=r.get("runner"),
               e2e_driver_commit_crops_per_cpu_s=r.get("driver_commit_crops_per_cpu_s"), naive=naive,
               # as the main row: scoring phase (after Ray's start) / naive; and whole call incl. Ray's start
               e2e_over_naive=(r.get("crops_per_s") or r["crops_per_s_wall"]) / naive["crops_per_s"],
               e2e_wall_over_naive=r["crops_per_s_wall"] / naive["crops_per_s"])
    log(f"  end to end: {r.get('crops_per_s')} crops/s (scoring phase), {r['crops_per_s_wall']:.0f} wall")
    return out


def _ratios(res: dict) -> tuple[dict, dict]:
    e2e, naive = res["end_to_end"], res["naive"]
    fwd = [r for r in res["forward"] if r["arch"] == E2E_ARCH]
    same = _best(fwd, path=e2e["path"])
    best = _best(fwd)
    runs = e2e["runs"]
    # steady state: the largest archive (actor start and the graph load are paid once per run)
    big = runs[-1]
    e2e_rate = big.get("crops_per_s") or big["crops_per_s_wall"]
    growth = None
    if len(runs) > 1 and runs[0].get("actor_peak_rss_mb") and runs[-1].get("actor_peak_rss_mb"):
        growth = runs[-1]["actor_peak_rss_mb"] / runs[0]["actor_peak_rss_mb"]
    # The fastest path whose held-out ROC-AUC is within fp32's interval (path-aware CV's rule; <= 0.1% flips
    # on the accuracy set where no AUC was measured)
    eligible = {r["path"] for r in res.get("accuracy", []) if r["arch"] == E2E_ARCH
                and (r["auc_within_fp32"] if "auc_within_fp32" in r else r.get("auto_eligible"))}
    best_acc = max((r for r in fwd if r.get("status") == "ok" and r["path"] in eligible),
                   key=lambda r: r["crops_per_s"], default=None)
    steady = big.get("steady_crops_per_s")
    ratios = {
        "e2e_crops": big["n"],
        "e2e_first_block_s": big.get("first_block_s"),
        "e2e_steady_over_forward_same_path": same and steady and steady / same["crops_per_s"],
        "best_accurate_forward": best_acc and {k: best_acc[k] for k in ("path", "batch", "crops_per_s")},
        "e2e_over_naive": e2e_rate / naive["crops_per_s"],
        "e2e_over_forward_same_path": same and e2e_rate / same["crops_per_s"],
        "e2e_over_best_forward": best and e2e_rate / best["crops_per_s"],
        "memory_growth_at_scale": growth,
        "best_forward": best and {k: best[k] for k in ("path", "batch", "crops_per_s")},
        "driver_commit_crops_per_cpu_s": big.get("driver_commit_crops_per_cpu_s"),
    }
    targets = {}
    for k, goal in TARGETS.items():
        v = ratios[k]
        met = None if v is None else (v <= goal if k == "memory_growth_at_scale" else v >= goal)
        targets[k] = {"value": v, "goal": goal, "met": met}
    return ratios, targets
