"""`InjectConfig`: how backgrounds are drawn from an archive and what is injected into them. Torch- and Ray-free."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, fields

from cropray.errors import ConfigError
from cropray.synth.kinds import parse_kinds

MAX_ARCHIVE_CROPS = 2_000_000  # 64x64 float32: ~33 GB; the budget is held in memory


@dataclass(frozen=True)
class InjectConfig:
    archive_crops: int = 20_000  # background crops drawn from the archive (held in memory: ~16 KB each at 64x64)
    seed: int = 0  # sampling, signal parameters and the injected/plain split all follow it
    inject_fraction: float = 0.5  # share of usable backgrounds that get a signal (the rest stay negatives)
    snr_range: tuple[float, float] = (2.0, 60.0)  # injected SNR, log-uniform; dedoppler finds little below ~6
    kinds: str = "all"  # signal kinds, as `cropray synth --kinds` (default: every track morphology)
    exclude_quantile: float = 0.99  # backgrounds above this quantile of the labelled negatives' track statistic are dropped
    min_backgrounds: int = 500  # fewer usable backgrounds than this: a warning with the count
    read_oversample: float = 2.0  # row groups are read until they hold this many times the budget (spread vs. cost)
    real_share: float = 0.5  # training: share of each epoch's draws that are real labelled crops
    per_epoch: int = 2048  # training: archive crops drawn per epoch (a fresh subset each epoch)

    def __post_init__(self):
        def bad(name, why):
            raise ConfigError(f"inject config: {name} {why} (got {getattr(self, name)!r})")

        for name, lo, hi in (("archive_crops", 1, MAX_ARCHIVE_CROPS), ("seed", 0, 2**63 - 1),
                             ("min_backgrounds", 0, MAX_ARCHIVE_CROPS), ("per_epoch", 1, MAX_ARCHIVE_CROPS)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not lo <= v <= hi:
                bad(name, f"must be an integer in [{lo}, {hi:,}]")
        for name, lo, hi in (("inject_fraction", 0.05, 0.95), ("exclude_quantile", 0.5, 1.0),
                             ("read_oversample", 1.0, 100.0), ("real_share", 0.05, 0.95)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not lo <= v <= hi:
                bad(name, f"must be a number in [{lo}, {hi}]")
        try:
            lo, hi = (float(v) for v in self.snr_range)
        except (TypeError, ValueError):
            bad("snr_range", "must be a pair (low, high)")
        if not (math.isfinite(hi) and 0 < lo <= hi):
            bad("snr_range", "must satisfy 0 < low <= high, both finite")
        object.__setattr__(self, "snr_range", (lo, hi))
        parse_kinds(self.kinds)  # ConfigError listing the valid kinds

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> InjectConfig:
        valid = [f.name for f in fields(cls)]
        unknown = sorted(set(d) - set(valid))
        if unknown:
            raise ConfigError(f"inject config: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(valid)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
