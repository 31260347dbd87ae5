"""Archive scoring on Ray Data (SPEC 5): `score_archive(ScoreConfig(...))` -> summary dict.

Modules: config (ScoreConfig, no torch/Ray), plan (footers -> commit units), source (Ray read
tasks), scorer (ScoreBatch, the actor's callable class), commit (exactly-once output protocol),
manifest (_manifest.json), dups (duplicate crop_ids), cluster (joining Ray, pool sizing),
pipeline (the driver).
"""

from cropray.scoring.config import ScoreConfig


def score_archive(cfg: ScoreConfig, log=None, on_commit=None) -> dict:
    """Score `cfg.input` into `cfg.output` (see cropray.scoring.pipeline)."""
    from cropray.scoring.pipeline import score_archive as run

    return run(cfg, log=log, on_commit=on_commit)


__all__ = ["ScoreConfig", "score_archive"]
