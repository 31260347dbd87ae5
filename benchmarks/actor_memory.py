"""Does an actor's memory stay flat as the archive grows? Peak RSS vs peak USS of the scoring actors.

`cropray bench` reports the actors' peak RSS (ru_maxrss). RSS also counts shared pages the actor has
touched, e.g. Ray's object store (plasma, an mmap'd file shared with every worker), which grow with
the number of distinct blocks that passed through. USS (memory private to the process: model,
torch/numpy buffers, Python heap) is what would grow if an actor held on to batches. This samples
both, every 0.25 s, for every scoring actor of a `score_archive` run, at each archive size.

  python benchmarks/actor_memory.py                     # 20,000 and 80,000 crops
  python benchmarks/actor_memory.py --sizes 20000,160000
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import threading
from pathlib import Path

import psutil


def sample_actors(stop: threading.Event, peaks: dict) -> None:
    me = psutil.Process()
    while not stop.is_set():
        for p in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if "ScoreBatch" not in " ".join(p.cmdline()):
                    continue
                m = p.memory_full_info()
                old = peaks.get(p.pid, (0, 0))
                peaks[p.pid] = (max(old[0], m.rss), max(old[1], m.uss))
        stop.wait(0.25)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="20000,80000", help="archive sizes (crops), comma-separated")
    p.add_argument("--arch", default="shallow_cnn")
    args = p.parse_args(argv)

    from cropray.bench.trained import train_briefly
    from cropray.bundle import save_bundle
    from cropray.scoring.config import ScoreConfig
    from cropray.scoring.pipeline import score_archive
    from cropray.synth import synth_archive

    work = Path(tempfile.mkdtemp(prefix="cropray-actor-memory-"))
    tm = train_briefly(args.arch, seconds=float("inf"), max_steps=100, n_train=1024, seed=0)
    bundle = save_bundle(tm.model, work / "bundle", threshold=tm.threshold, train_summary={}, metrics={},
                         calibration_crops=tm.calibration_crops)
    rows = []
    for n in map(int, args.sizes.split(",")):
        arch = work / f"archive-{n}"
        synth_archive(arch, n, files=4, seed=7)
        peaks: dict = {}
        stop = threading.Event()
        t = threading.Thread(target=sample_actors, args=(stop, peaks), daemon=True)
        t.start()
        s = score_archive(ScoreConfig(bundle=str(bundle), input=str(arch), output=str(work / f"scores-{n}"),
                                      overwrite=True))
        stop.set()
        t.join()
        rss = max((v[0] for v in peaks.values()), default=0) / 2**20
        uss = max((v[1] for v in peaks.values()), default=0) / 2**20
        rows.append((n, len(peaks), rss, uss, s["rows_scored"]))
        print(f"{n:>8,} crops: {len(peaks)} actors, peak RSS {rss:,.0f} MB, peak USS {uss:,.0f} MB "
              f"({s['rows_scored']:,} scored)", flush=True)
    base = rows[0]
    for n, _, rss, uss, _ in rows[1:]:
        print(f"x{n / base[0]:.0f} archive: RSS x{rss / base[2]:.2f}, USS x{uss / base[3]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
