"""Joining Ray (embedded or a cluster) and sizing the actor pool from what the cluster has."""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass

from cropray.errors import ConfigError, CroprayError

PROBE_TIMEOUT_S = 5.0


def probe(address: str) -> None:
    """Fail fast (exit 2) when nothing listens at a cluster address: ray.init would retry for minutes."""
    target = address
    if address == "auto":
        try:  # where `ray.init("auto")` would go (RAY_ADDRESS or the last local cluster); private helper
            from ray._private.services import canonicalize_bootstrap_address

            target = canonicalize_bootstrap_address("auto")
        except ImportError:
            return
        except Exception as e:
            raise CroprayError(f"--address auto: no running Ray cluster found ({e})") from None
        if target is None:
            raise CroprayError("--address auto: no running Ray cluster found (start one with `ray start --head`)")
    hostport = target.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise CroprayError(f"--address {address}: expected HOST:PORT, ray://HOST:PORT or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT_S).close()
    except OSError as e:
        raise CroprayError(f"--address {address}: cannot reach a Ray cluster at {hostport} ({e.strerror or e})") from None


def connect(address: str | None) -> bool:
    """Join Ray. Returns True when this call started it (the caller shuts it down).

    No address: reuse an initialised Ray (tests, notebooks), else `ray.init()`, which joins the
    cluster in RAY_ADDRESS (set by `ray job submit`) or starts an embedded local one with token
    authentication on.
    """
    import ray

    if address:
        probe(address)
    if ray.is_initialized():
        return False
    if address:
        try:
            ray.init(address=address, log_to_driver=False)
        except Exception as e:
            raise CroprayError(f"--address {address}: cannot connect ({type(e).__name__}: {e})") from None
        return True
    # RAY_AUTH_MODE unset: Ray turns token auth on for a local cluster it starts (and says so).
    # Setting the variable here would be too late: Ray reads it when first imported.
    ray.init(include_dashboard=False, log_to_driver=False)
    return True


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
    starves the readers and deadlocks (ray issue 44687; see RAY_NOTES). `strict` (a cluster this
    process started, whose size is known) turns a user choice that would deadlock into an error.
    """
    gpus = float(num_gpus) if num_gpus is not None else (1.0 if cluster_gpus >= 1 else 0.0)
    if gpus > 0:
        n = max(1, int(cluster_gpus // gpus)) if cluster_gpus else 1
        lo, hi = actors or (n, n)
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
