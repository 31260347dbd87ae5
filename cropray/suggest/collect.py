"""`Collector`: the scoring pipeline's `on_block` consumer that fills suggest's candidate pools."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cropray.suggest.config import REASONS, SuggestConfig
from cropray.suggest.criteria import priorities
from cropray.suggest.features import FEAT, TRACK
from cropray.suggest.pools import Rows, TopPool

SCORED = 0  # ScoreBatch `_kind` of a scored row (cropray.scoring.scorer.SCORED; not imported: no Ray here)
MAX_LABELLED_CENTRES = 20_000  # features of already-labelled crops kept as k-center seeds


class Collector:
    """Call with each result block (a pyarrow Table with `_feat`/`_track`) and the scoring plan."""

    def __init__(self, cfg: SuggestConfig, threshold: float, probability: bool, labelled_ids=()):
        self.cfg, self.threshold, self.probability = cfg, float(threshold), probability
        self.pools = {r: TopPool(cfg.pool_size(r)) for r in REASONS}
        self.labelled = pa.array(sorted({str(i) for i in labelled_ids}), pa.string())
        self.labelled_feat: list[np.ndarray] = []  # (m, d) blocks, capped at MAX_LABELLED_CENTRES rows
        self.rng = np.random.default_rng(cfg.seed)
        self.rows_seen = self.rows_labelled = 0
        self.units: dict[int, tuple[str, str]] = {}  # unit index -> (filesystem path, uri)

    def __call__(self, block: pa.Table, plan=None) -> None:
        if plan is not None and not self.units:
            self.units = {u.index: (u.path, u.uri) for u in plan.units}
        ok = block.column("_kind").to_numpy() == SCORED
        if not ok.any():
            return
        feat = block.column(FEAT).combine_chunks().flatten().to_numpy().reshape(block.num_rows, -1)  # (n, d)
        if len(self.labelled):
            lab = pc.is_in(block.column("crop_id").cast(pa.string()), value_set=self.labelled)
            lab = lab.to_numpy(zero_copy_only=False) & ok
            if lab.any():
                self.rows_labelled += int(lab.sum())
                if sum(len(f) for f in self.labelled_feat) < MAX_LABELLED_CENTRES:
                    self.labelled_feat.append(feat[lab].copy())
                ok &= ~lab
        idx = np.flatnonzero(ok)
        if not len(idx):
            return
        rows = Rows(crop_id=block.column("crop_id").to_numpy(zero_copy_only=False)[idx],
                    unit=block.column("_unit").to_numpy()[idx], row=block.column("_row").to_numpy()[idx],
                    score=block.column("score").to_numpy(zero_copy_only=False)[idx].astype(np.float32),
                    track=block.column(TRACK).to_numpy(zero_copy_only=False)[idx].astype(np.float32),
                    feat=feat[idx].copy())
        self.add(rows)

    def add(self, rows: Rows) -> None:
        """Offer candidate rows (already free of labelled crops) to every pool."""
        self.rows_seen += len(rows)
        pri = priorities(rows.score, rows.track, self.threshold, self.probability, self.rng.random(len(rows)))
        for r in REASONS:
            self.pools[r].add(rows, pri[r])

    def labelled_centres(self) -> np.ndarray:
        d = self.cfg.features
        return np.concatenate(self.labelled_feat)[:MAX_LABELLED_CENTRES] if self.labelled_feat else np.zeros((0, d), np.float32)
