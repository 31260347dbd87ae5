"""Archive scoring on Ray Data: `score_archive(ScoreConfig(...))` -> ScoreResult.

Modules: config (ScoreConfig, no torch/Ray), plan (footers -> commit units), source (Ray read
tasks), scorer (ScoreBatch, the actor's callable class), commit (exactly-once output protocol),
manifest (_manifest.json, the Manifest object), result (ScoreResult), dups (duplicate crop_ids), cluster (joining Ray, pool sizing),
warm (an actor's warm start from a cached build, torch-free), trace (CROPRAY_TRACE start-up stages), pipeline (the driver).
"""

from cropray.scoring.config import ScoreConfig


def score_archive(cfg: ScoreConfig, log=None, on_commit=None, **kw):
    """Score `cfg.input` into `cfg.output`; returns a cropray.scoring.result.ScoreResult (see
    cropray.scoring.pipeline for on_block and files)."""
    from cropray.scoring.pipeline import score_archive as run

    return run(cfg, log=log, on_commit=on_commit, **kw)


__all__ = ["ScoreConfig", "score_archive"]
