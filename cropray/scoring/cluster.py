"""Sizing the scoring actor pool from what the Ray cluster has (starting/joining Ray: cropray.ray_session)."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from cropray.errors import ConfigError
from cropray.ray_session import check_fits


@dataclass
class PoolPlan:
    min_size: int
    max_size: int
    num_cpus: float  # per actor
    num_gpus: float  # per actor
    threads: int  # torch threads per actor
    read_cpus: float  # per read task

    def describe(self) -> dict:
        return dict(self.__dict__)


def plan_pool(actors, cpus_per_actor, num_gpus, *, cluster_cpus: float, cluster_gpus: float,
              strict: bool) -> PoolPlan:
    """Actor pool for the resources at hand.

    GPUs: one actor per GPU (1 GPU, 1 CPU each). CPUs only: one actor per CPU, each holding
    (CPUs - 1) / CPUs of a CPU, so read tasks always keep one CPU: a pool that takes every CPU
    starves the readers and deadlocks (ray-project/ray#44687). `strict` (a cluster this
    process started, whose size is known) turns a user choice that would deadlock into an error.
    """
    gpus = float(num_gpus) if num_gpus is not None else (1.0 if cluster_gpus >= 1 else 0.0)
    if gpus > 0:
        n = max(1, int(cluster_gpus // gpus)) if cluster_gpus else 1
        lo, hi = actors or (n, n)
        check_fits("GPU", lo * gpus, cluster_gpus, asked=f"{lo} actor(s) x --num-gpus {gpus:g}", what="actor",
                   strict=strict, say=lambda m: print(f"cropray score: {m}", file=sys.stderr))
        cpus = float(cpus_per_actor) if cpus_per_actor is not None else 1.0
        return PoolPlan(lo, hi, cpus, gpus, max(1, round(cpus)), 1.0)
    spare = 1.0 if cluster_cpus >= 2 else cluster_cpus / 2  # CPU kept for read tasks
    lo, hi = actors or (max(1, int(cluster_cpus)),) * 2
    if cpus_per_actor is None:
        cpus = min(1.0, max(0.01, (cluster_cpus - spare) / hi))
        cpus = int(cpus * 100) / 100  # 0.5, 0.66, ...: sums stay below the CPUs left
    else:
        cpus = float(cpus_per_actor)
    read = min(1.0, spare)
    if lo * cpus > cluster_cpus - read + 1e-9:
        msg = (f"--actors {lo},{hi} x --cpus-per-actor {cpus:g} holds {lo * cpus:g} of the cluster's "
               f"{cluster_cpus:g} CPUs at start, leaving read tasks none: Ray Data would hang. "
               f"Use fewer actors, a MIN,MAX range, or a fractional --cpus-per-actor")
        if strict:
            raise ConfigError(msg)
        print(f"cropray score: warning: {msg}", file=sys.stderr)
    return PoolPlan(lo, hi, cpus, 0.0, max(1, round(cpus)), read)
