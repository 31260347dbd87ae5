"""End to end (`cropray score` through Ray Data) and the naive baseline, on the same archive."""

from __future__ import annotations

import contextlib
import resource
import threading
import time
from pathlib import Path

import numpy as np
import torch


class TreeRSS:
    """Peak resident memory of this process and all its descendants (the embedded Ray cluster:
    GCS, raylet, read tasks, actors), sampled every `every` s. None where psutil is missing."""

    def __init__(self, every: float = 0.2):
        self.every, self.peak, self._stop = every, None, threading.Event()

    def _sample(self) -> int:
        import psutil

        me = psutil.Process()
        total = 0
        for p in [me, *me.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def _run(self):
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                self.peak = max(self.peak or 0, self._sample())
            self._stop.wait(self.every)

    def __enter__(self):
        try:
            import psutil  # noqa: F401
        except ImportError:
            return self
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if hasattr(self, "_t"):
            self._t.join()

    @property
    def peak_mb(self):
        return None if self.peak is None else round(self.peak / 2**20, 1)


def naive_baseline(archive: Path, model: torch.nn.Module, threshold: float, out: Path) -> dict:
    """What a user writes first: pandas.read_parquet, np.stack, eager fp32 NCHW batch-32 loop, pandas out."""
    import pandas as pd

    t0 = time.perf_counter()
    df = pd.read_parquet(archive)
    x = np.stack(df["crop"].to_numpy()).reshape(len(df), 1, 64, 64).astype(np.float32)  # (N,1,64,64)
    t_read = time.perf_counter() - t0
    scores = []
    with torch.no_grad():
        for i in range(0, len(x), 32):
            scores.append(model(torch.from_numpy(x[i:i + 32])).numpy())
    s = np.concatenate(scores)
    t_model = time.perf_counter() - t0 - t_read
    pd.DataFrame({"crop_id": df["crop_id"], "score": s, "is_signal": s >= threshold}).to_parquet(out)
    wall = time.perf_counter() - t0
    return {"n": len(df), "wall_s": round(wall, 3), "crops_per_s": len(df) / wall, "read_s": round(t_read, 3),
            "model_s": round(t_model, 3), "model_crops_per_s": len(df) / t_model,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


class DriverClock:
    """The driver's own cost per result row: `score_archive` calls `on_block` in the driver's main thread
    with each result block just before committing it, so the main thread's CPU time between the first and
    the last block is what fetching and committing the blocks in between cost (Ray Data's executor runs
    in other threads). rows / that time = the rate at which this driver could take results if the actors
    were infinitely fast: the next bound once actors are fast (many GPUs)."""

    def __init__(self):
        self.first = self.last = None  # thread CPU seconds at the first / latest block
        self.rows_before_last = 0  # rows of the blocks from the first up to (not including) the latest
        self._pending = 0

    def on_block(self, table, plan) -> None:
        now = time.thread_time()
        if self.first is None:
            self.first = now
        else:
            self.rows_before_last += self._pending
        self.last, self._pending = now, table.num_rows

    @property
    def crops_per_cpu_s(self) -> float | None:
        busy = (self.last or 0.0) - (self.first or 0.0)
        return round(self.rows_before_last / busy) if self.rows_before_last and busy > 0 else None


def end_to_end(bundle: Path, archive: Path, out: Path, *, precision: str, device: str = "cpu", rows: int,
               runner: str = "auto") -> dict:
    """`cropray score` through the scoring library, as the command runs it: `runner` auto picks in-process
    or Ray for `rows` rows (scoring/config.py); on Ray, its embedded local Ray (cropray.ray_session:
    loopback, token auth) is started and stopped inside score_archive. device "cuda": one actor per GPU
    (score's default on a cluster with GPUs); "cpu": no GPU is given to the actors even if present."""
    from cropray.scoring.config import ScoreConfig, choose_runner
    from cropray.scoring.pipeline import score_archive

    base = ScoreConfig(bundle=str(bundle), input=str(archive), output=str(out), precision=precision,
                       overwrite=True, runner=runner)
    if device == "cuda":  # GPU actors: Ray
        runner = "ray"
    elif runner == "auto":
        runner = choose_runner(base, rows)[0]
    cfg = ScoreConfig(bundle=str(bundle), input=str(archive), output=str(out), precision=precision,
                      overwrite=True, runner=runner, num_gpus=0.0 if device == "cpu" and runner == "ray" else None)
    clock = DriverClock()
    t0 = time.perf_counter()
    with TreeRSS() as mem:
        summary = score_archive(cfg, on_block=clock.on_block)
    wall = time.perf_counter() - t0
    rows = summary.get("rows_scored") or 0
    actors = summary.get("actors") or []
    return {"n": rows, "wall_s": round(wall, 3), "crops_per_s": summary.get("crops_per_s"),
            "crops_per_s_wall": rows / wall, "state": summary.get("state"),
            "runner": summary.get("runner"), "actors": len(actors), "paths_used": sorted({a.get("path") for a in actors if a.get("path")}),
            "actor_peak_rss_mb": max((a.get("peak_rss_mb", 0) for a in actors), default=None),
            "tree_peak_rss_mb": mem.peak_mb, "pool": summary.get("pool"),
            "rows_quarantined": summary.get("rows_quarantined"),
            # actor start-up until the first results, and the rate after it (scoring/pipeline.py)
            "first_block_s": summary.get("first_block_s"), "steady_crops_per_s": summary.get("steady_crops_per_s"),
            # the driver's own cost per result row; in-process the driver thread also scores: not measured there
            "driver_commit_crops_per_cpu_s": clock.crops_per_cpu_s if summary.get("runner") == "ray" else None}
