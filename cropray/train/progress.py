"""Training progress on stderr: a tqdm bar on a terminal, a plain line every ~10 s anywhere else.

A Ray job's log or a CI log is not a terminal, and a bar there is either noise (carriage returns) or
off; twenty silent minutes look like a hang. So off a terminal `Progress` prints one plain line at
most every `interval` seconds (CROPRAY_PROGRESS_INTERVAL, default 10), when a fold finishes an epoch:

    cropray train: cv siamese k=5 | epoch 7/60 | folds active 5/5 | best CV ROC-AUC 0.9431 | 41 s, ETA <= 5.9 min

The ETA is an upper bound: it assumes every remaining epoch up to the cap runs, and early stopping
usually ends sooner. progress=False silences both forms; True forces the bar.
"""

from __future__ import annotations

import os
import sys
import time

INTERVAL_ENV = "CROPRAY_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 10.0


def interval_s() -> float:
    """Seconds between plain lines: CROPRAY_PROGRESS_INTERVAL, else 10 (a bad value -> 10)."""
    try:
        v = float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL))
    except ValueError:
        return DEFAULT_INTERVAL
    return v if v >= 0 else DEFAULT_INTERVAL


def _dur(s: float) -> str:
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.1f} min" if s < 5400 else f"{s / 3600:.1f} h"


class Progress:
    """Epoch progress of one stage (a CV of k folds, or one fit): `tick` after every fold-epoch,
    `epoch_done` after every (lockstep) epoch. A context manager, like the tqdm bar it wraps."""

    def __init__(self, total: int, stage: str, progress: bool | None, *, folds: int = 1,
                 interval: float | None = None, stream=None):
        self.stream = stream or sys.stderr
        self.total, self.stage, self.folds = max(1, int(total)), stage, max(1, int(folds))
        tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.mode = "off" if progress is False else "bar" if (progress is True or tty) else "lines"
        self.interval = interval_s() if interval is None else float(interval)
        self.t0 = self.last = time.perf_counter()
        self.best: float | None = None
        self._bar = None
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=stage, unit="epoch", file=self.stream, leave=False)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.close()

    def tick(self, epoch: int, done_in_epoch: int = 1, active: int | None = None) -> None:
        """After a fold (done_in_epoch of `active` this epoch) finished `epoch`: a line when one is due."""
        if self.mode != "lines":
            return
        now = time.perf_counter()
        if now - self.last < self.interval:
            return
        self.last = now
        active = self.folds if active is None else active
        frac = (epoch - 1 + done_in_epoch / max(1, active)) / self.total  # share of the cap done
        elapsed = now - self.t0
        eta = elapsed * (1 - frac) / frac if frac > 0 else float("nan")
        parts = [f"cropray train: {self.stage}", f"epoch {epoch}/{self.total}"]
        if self.folds > 1:
            parts.append(f"folds active {active}/{self.folds}")
        if self.best is not None:
            parts.append(f"best CV ROC-AUC {self.best:.4f}")
        parts.append(f"{_dur(elapsed)}, ETA <= {_dur(eta)}")
        print(" | ".join(parts), file=self.stream, flush=True)

    def epoch_done(self, best: float | None = None, **postfix) -> None:
        """After a whole epoch: advance the bar (postfix: name -> shown value); `best`: this epoch's CV
        ROC-AUC, for the lines' best-so-far."""
        if best is not None:
            self.best = best if self.best is None else max(self.best, best)
        if self._bar is not None:
            self._bar.update(1)
            if postfix:
                self._bar.set_postfix(**postfix)

    # tqdm-like interface (`progress_bar` callers): one call per epoch
    def update(self, n: int = 1) -> None:
        self._epoch = getattr(self, "_epoch", 0) + n
        self.tick(self._epoch)
        self.epoch_done()

    def set_postfix(self, **postfix) -> None:
        if self._bar is not None:
            self._bar.set_postfix(**postfix)
