"""In-process scoring, without Ray: the same units, `ScoreBatch` and `Committer` as the Ray Data pipeline.

Why: on one machine a small job is dominated by Ray's own start and stop (~8-11 s on 2 vCPUs: the
cluster, an actor process, their shutdown) against a few seconds of reading and scoring, so a user's
own loop beat `cropray score` on archives of 2,000 and 20,000 crops. Here the driver reads the
planned units in a background thread (pyarrow releases the GIL) while its main thread decodes and
scores them on every CPU (ONNX Runtime's intra-op threads, the numpy de-Doppler's chunk threads),
and commits each unit exactly as the Ray runner does: same output files, same manifest, same resume.

What it does not do: spread work over several machines or GPUs, restart a crashed worker (a crash
ends the run; the rerun resumes at the first uncommitted unit, as after any crash). `--runner auto`
picks it only where those do not matter (scoring/config.py: choose_runner).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator

from cropray.scoring.frames import frame_schema, read_unit
from cropray.scoring.plan import Plan, Unit
from cropray.scoring.scorer import ScoreBatch, bundle_files
from cropray.scoring.sink import BlockSink


def local_threads() -> int:
    """CPUs this process may use (its affinity mask, which containers and `taskset` narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


class Prefetch:
    """Iterate `items` in a daemon thread, at most `depth` items ahead: reading overlaps scoring.
    An exception in the producer is raised in the consumer; close() stops the producer early."""

    _END = object()

    def __init__(self, items: Iterator, depth: int = 2):
        self._q: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(items,), name="cropray-read", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, items: Iterator) -> None:
        try:
            for item in items:
                if not self._put(("item", item)):
                    return
        except BaseException as e:  # handed to the consumer, raised there
            self._put(("error", e))
            return
        self._put(("end", None))

    def __iter__(self):
        while True:
            kind, item = self._q.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _frames(plan: Plan, units: list[Unit], files, read_rows: int) -> Iterator[tuple[str, object]]:
    """(group, tagged frame) for every pending unit, in plan order (scoring/source.read_unit)."""
    schemas = {g: frame_schema(plan.crop_types[g], plan.id_type, plan.keep_fields) for g in plan.specs}
    for u in units:
        yield from ((u.group, f) for f in read_unit(u, files.filesystem, schemas[u.group], read_rows))


def run_local(cfg, plan: Plan, files, pending: list[Unit], sink: BlockSink, *, extra_columns=None) -> dict:
    """Score `pending` in this process into `sink`; returns the run's pool record (runner, threads)."""
    threads = local_threads()
    blobs = bundle_files(cfg.bundle)  # digest and every file's sha256 checked, as an actor does
    scorers: dict[str, ScoreBatch] = {}  # per crop encoding; the first built serves the usual one-group job
    reader = Prefetch(_frames(plan, pending, files, cfg.read_rows), depth=2)
    try:
        for group, frame in reader:
            if group not in scorers:
                scorers[group] = ScoreBatch(blobs, plan.specs[group], precision=cfg.precision, device="cpu",
                                            threads=threads, model_batch=cfg.model_batch,
                                            extra_columns=extra_columns)
            sink(scorers[group](frame))
    finally:
        reader.close()
    return {"runner": "local", "threads": threads, "device": "cpu"}
