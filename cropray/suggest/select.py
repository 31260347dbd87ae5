"""Pick K diverse crops from the candidate pools: k-center greedy (farthest point) on the features.

For each reason in turn (config.REASONS order), its quota is filled from its pool by farthest-point
selection: each pick is the candidate farthest (Euclidean, projected model features) from everything
already chosen, the already-labelled crops included, so the queue does not spend K answers on K
copies of one look. The pool itself is the reason's top `pool_factor x quota` candidates, so every
pick still qualifies for its reason; the diversity step only chooses among them. A pool with too few
candidates (e.g. no disagreements) hands the rest of its quota to the next reason.

Cost: O(K x pool x d) flops, e.g. K = 1,000, pools of 8,000, d = 16: ~0.1 G per reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cropray.suggest.collect import Collector
from cropray.suggest.config import REASONS
from cropray.suggest.pools import Rows


@dataclass
class Picks:
    rows: Rows  # (K,) chosen rows, in pick order
    reason: np.ndarray  # (K,) object
    priority: np.ndarray  # (K,) float64: the reason's priority of the row


def kcenter(feat: np.ndarray, k: int, centres: np.ndarray, priority: np.ndarray) -> list[int]:
    """Indices of k rows of feat (M, d) chosen farthest-first from `centres` (C, d). With no centres
    the first pick is the highest-priority row."""
    m = len(feat)
    k = min(k, m)
    if k <= 0:
        return []
    f = feat.astype(np.float64)
    if len(centres):
        c = centres.astype(np.float64)
        # (M,) squared distance to the nearest centre, in chunks of centres to bound memory
        dist = np.full(m, np.inf)
        for a in range(0, len(c), 4096):
            d2 = ((f[:, None, :] - c[None, a:a + 4096, :]) ** 2).sum(-1)  # (M, <=4096)
            dist = np.minimum(dist, d2.min(1))
        first = int(np.argmax(dist))
    else:
        first = int(np.argmax(priority))
    chosen = [first]
    dist = np.minimum(dist, ((f - f[first]) ** 2).sum(1)) if len(centres) else ((f - f[first]) ** 2).sum(1)
    dist[first] = -1.0
    while len(chosen) < k:
        j = int(np.argmax(dist))
        chosen.append(j)
        dist = np.minimum(dist, ((f - f[j]) ** 2).sum(1))
        dist[chosen] = -1.0  # duplicates of a chosen row stay at distance 0; never rechosen
    return chosen


def choose(col: Collector) -> Picks:
    """K picks from the collector's pools; each crop at most once."""
    quotas = col.cfg.quotas()
    centres = [col.labelled_centres()]
    taken: set = set()
    parts, reasons, pris = [], [], []
    carry = 0
    for r in REASONS:
        want = quotas[r] + carry
        rows, pri = col.pools[r].ordered()
        got = 0
        if rows is not None and want > 0:
            fresh = np.array([cid not in taken for cid in rows.crop_id], bool)
            rows, pri = rows.take(np.flatnonzero(fresh)), pri[fresh]
            idx = kcenter(rows.feat, want, np.concatenate(centres), pri)
            if idx:
                sel = rows.take(np.asarray(idx))
                parts.append(sel)
                reasons += [r] * len(idx)
                pris.append(pri[idx])
                centres.append(sel.feat)
                taken.update(sel.crop_id.tolist())
                got = len(idx)
        carry = want - got
    if not parts:
        empty = Rows(np.zeros(0, object), np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, np.float32),
                     np.zeros(0, np.float32), np.zeros((0, col.cfg.features), np.float32))
        return Picks(empty, np.zeros(0, object), np.zeros(0))
    return Picks(Rows.concat(parts), np.array(reasons, object), np.concatenate(pris))
