"""`SuggestConfig`: how `cropray suggest` splits K picks between its reasons (no torch, no Ray)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from cropray.errors import ConfigError
from cropray.validate import REQUIRED, integer, mapping, validate

# Reasons, in the order their quotas are filled (a short pool hands its unused quota on).
TOP, DISAGREE, UNCERTAIN, DIVERSE = "top_score", "disagrees_with_track", "uncertain", "diverse"
REASONS = (TOP, DISAGREE, UNCERTAIN, DIVERSE)
DEFAULT_SHARES = {TOP: 0.1, DISAGREE: 0.2, UNCERTAIN: 0.4, DIVERSE: 0.3}


@dataclass
class SuggestConfig:
    """One selection. Dumped into the queue's metadata."""

    n: int = integer(REQUIRED, 1)  # K: crops to pick
    shares: dict = mapping(default_factory=lambda: dict(DEFAULT_SHARES))  # reason -> share of K
    pool_factor: int = integer(8, 1)  # candidates kept per reason = pool_factor x its quota (diversity picks
    #   among them)
    max_pool: int = integer(50_000, 1)  # hard cap per reason, whatever K: the driver's memory bound
    features: int = integer(16, 1, 256)  # dims of the projected model features that travel back per row
    seed: int = integer(0, 0)  # the uniform reservoir's random keys

    def __post_init__(self) -> None:
        validate(self, "suggest config")  # each field's rule (cropray.validate)
        unknown = set(self.shares) - set(REASONS)
        if unknown:
            raise ConfigError(f"unknown reasons {sorted(unknown)}; valid: {', '.join(REASONS)}", field="shares")
        if any(float(v) < 0 for v in self.shares.values()) or sum(map(float, self.shares.values())) <= 0:
            raise ConfigError(f"shares must be >= 0 and not all 0, got {self.shares}", field="shares")

    def quotas(self) -> dict[str, int]:
        """reason -> picks, summing to n (largest remainders get the rounding)."""
        total = sum(float(self.shares.get(r, 0)) for r in REASONS)
        raw = {r: self.n * float(self.shares.get(r, 0)) / total for r in REASONS}
        q = {r: int(v) for r, v in raw.items()}
        for r in sorted(REASONS, key=lambda r: q[r] - raw[r])[: self.n - sum(q.values())]:
            q[r] += 1
        return q

    def pool_size(self, reason: str) -> int:
        """Candidates kept for `reason` (>= n, so a short quota can be refilled from any pool)."""
        return min(self.max_pool, max(self.n, self.pool_factor * max(1, self.quotas()[reason])))

    def to_dict(self) -> dict:
        return asdict(self)
