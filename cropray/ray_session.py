"""The one place cropray starts or joins Ray (score, tune, demo, bench), and the one resource check.

`ray_session(address)` (or `open_session` / `RaySession.close` where a `with` block does not fit):

- Ray already initialised in this process (tests, notebooks, the demo's own session): reused, left
  running. Nested inside a cropray session the cluster stays "private" (its size is still known).
- `address` (`--address auto | HOST:PORT | ray://HOST:10001`): probed first (a dead address fails in
  seconds, not after Ray's minutes of retries), then joined.
- `RAY_ADDRESS` set (inside `ray job submit`): probed, then joined.
- Otherwise a private embedded cluster for this process: token auth on (Ray's default for a cluster
  it starts), every port bound to 127.0.0.1, no dashboard, no Prometheus metrics endpoints.

Ray 2.60 has no public "bind to loopback" switch for the embedded case: `_node_ip_address="127.0.0.1"`
is rewritten to the host's routable IP unless `ray_constants.ENABLE_RAY_CLUSTER` is off (its value on
macOS and Windows, where Ray then binds loopback for the same reason), and the gRPC servers of GCS,
raylet and workers bind loopback only when the node IP is 127.0.0.1. Metrics: the agent's exporter
follows `enable_metrics_collection`; the dashboard head and the autoscaler monitor serve fixed ports
(DASHBOARD_METRIC_PORT, AUTOSCALER_METRIC_PORT) that cannot be switched off, so they get an invalid
port and their servers fail to start (logged in Ray's session logs, nothing else changes).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cropray.errors import ConfigError, CroprayError

LOOPBACK = "127.0.0.1"
PROBE_TIMEOUT_S = 5.0
# Env of the processes the embedded cluster spawns: metrics servers that cannot be disabled get a
# port no socket accepts (ray/dashboard/head.py, ray/autoscaler/_private/monitor.py catch the error).
_NO_METRICS_ENV = {"DASHBOARD_METRIC_PORT": "-1", "AUTOSCALER_METRIC_PORT": "-1"}
_SYSTEM_CONFIG = {"enable_metrics_collection": False}  # the dashboard agent's exporter: off

_active: list[RaySession] = []  # sessions this process has open, outermost first


@dataclass(frozen=True)
class Resources:
    cpus: float
    gpus: float
    nodes: int

    def to_dict(self) -> dict:
        return {"CPU": self.cpus, "GPU": self.gpus, "nodes": self.nodes}


@dataclass
class RaySession:
    """How this process holds Ray. `private`: an embedded cluster cropray started, of a fixed, known
    size (a request it cannot meet is an error, not a wait for an autoscaler)."""

    started: bool  # this session initialised Ray, so close() shuts it down
    private: bool
    kind: str  # "embedded", "address", "RAY_ADDRESS" or "reused"
    address: str | None = None
    _closed: bool = field(default=False, repr=False)

    def resources(self) -> Resources:
        import ray

        have = ray.cluster_resources()
        return Resources(float(have.get("CPU", 0.0)), float(have.get("GPU", 0.0)), len(ray.nodes()))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self in _active:
            _active.remove(self)
        if self.started:
            import ray

            ray.shutdown()


def probe(address: str, flag: str = "--address") -> None:
    """Fail fast (exit 2) when nothing listens at a cluster address: ray.init would retry for minutes."""
    target = address
    if address == "auto":
        try:  # where `ray.init("auto")` would go (RAY_ADDRESS or the last local cluster); private helper
            from ray._private.services import canonicalize_bootstrap_address

            target = canonicalize_bootstrap_address("auto")
        except ImportError:
            return
        except Exception as e:
            raise CroprayError(f"{flag} auto: no running Ray cluster found ({e})") from None
        if target is None:
            raise CroprayError(f"{flag} auto: no running Ray cluster found (start one with `ray start --head`)")
    hostport = target.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise CroprayError(f"{flag} {address}: expected HOST:PORT, ray://HOST:PORT or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT_S).close()
    except OSError as e:
        raise CroprayError(f"{flag} {address}: cannot reach a Ray cluster at {hostport} ({e.strerror or e})") from None


def probe_environment() -> None:
    """`probe` for the cluster `open_session()` will join through RAY_ADDRESS (a Ray job's driver), when
    Ray is not already up in this process: a dead address fails before any output is created."""
    address = os.environ.get("RAY_ADDRESS")
    if not address:
        return
    ray = sys.modules.get("ray")  # not imported yet: Ray cannot be up, and importing it costs seconds
    if ray is not None and ray.is_initialized():
        return
    probe(address, "RAY_ADDRESS")


def _join(address: str, flag: str) -> None:
    import ray

    probe(address, flag)
    try:
        ray.init(address=address, log_to_driver=False)
    except Exception as e:
        raise CroprayError(f"{flag} {address}: cannot connect ({type(e).__name__}: {e})") from None


def _start_embedded(num_cpus: int | None) -> None:
    """A private local cluster on loopback, token auth on, no dashboard and no metrics endpoints."""
    import ray
    import ray._private.ray_constants as ray_constants

    saved_env = {k: os.environ.get(k) for k in _NO_METRICS_ENV}
    saved_flag = ray_constants.ENABLE_RAY_CLUSTER
    os.environ.update(_NO_METRICS_ENV)
    ray_constants.ENABLE_RAY_CLUSTER = False  # keeps _node_ip_address=127.0.0.1 as given (see above)
    try:
        # address="local": a new cluster even when `ray start` runs one on this machine (someone else's)
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                 _node_ip_address=LOOPBACK, _system_config=dict(_SYSTEM_CONFIG))
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    _make_token_private()
    try:
        from ray._private.authentication.authentication_utils import is_token_auth_enabled

        if not is_token_auth_enabled():
            print("cropray: warning: RAY_AUTH_MODE turns Ray's token auth off; the embedded cluster "
                  "listens on 127.0.0.1 only, but any local user can reach it", file=sys.stderr)
    except ImportError:
        pass


def _make_token_private(path: Path | None = None) -> None:
    """Ray writes ~/.ray/auth_token world-readable (0644); whoever reads it can run code on the cluster.

    Tighten it to 0600 (and its folder to 0700) when it is ours; a file of another user is left alone.
    """
    path = path or Path.home() / ".ray" / "auth_token"
    for p, mode in ((path, 0o600), (path.parent, 0o700)):
        try:
            st = p.stat()
            if st.st_uid == os.getuid() and st.st_mode & 0o077:
                os.chmod(p, mode)
        except OSError:
            pass


def open_session(address: str | None = None, *, num_cpus: int | None = None,
                 flag: str = "--address") -> RaySession:
    """Start or join Ray as the module docstring says; the caller must close() the session."""
    import ray

    if address:
        probe(address, flag)  # even when Ray is up already: a wrong flag is still an error
    if ray.is_initialized():
        outer_private = bool(_active) and _active[0].private
        s = RaySession(started=False, private=outer_private and not address, kind="reused", address=address)
    elif address:
        _join(address, flag)
        s = RaySession(started=True, private=False, kind="address", address=address)
    elif os.environ.get("RAY_ADDRESS"):
        _join(os.environ["RAY_ADDRESS"], "RAY_ADDRESS")
        s = RaySession(started=True, private=False, kind="RAY_ADDRESS", address=os.environ["RAY_ADDRESS"])
    else:
        _start_embedded(num_cpus)
        s = RaySession(started=True, private=True, kind="embedded")
    _active.append(s)
    return s


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None,
                flag: str = "--address") -> Iterator[RaySession]:
    """`with ray_session(cfg.address) as s:` ... Ray is shut down at the end if this started it."""
    s = open_session(address, num_cpus=num_cpus, flag=flag)
    try:
        yield s
    finally:
        s.close()


def joins_cluster(address: str | None) -> bool:
    """Will `open_session(address)` join a cluster (other nodes, or a Ray job's driver)?"""
    return bool(address or os.environ.get("RAY_ADDRESS"))


def require_absolute(path, flag: str, address: str | None) -> None:
    """On a joined cluster a relative path names a directory inside a Ray job's temporary copy of the
    working dir (gone when the job ends), or a different directory on each node: refuse it."""
    if joins_cluster(address) and not Path(path).expanduser().is_absolute():
        via = f"--address {address}" if address else "RAY_ADDRESS (a Ray job)"
        raise ConfigError(f"{flag} {path}: give an absolute path on storage every node sees; on a cluster "
                          f"joined through {via} a relative path is a temporary or per-node directory")


def check_fits(kind: str, want: float, have: float, *, asked: str, what: str, strict: bool,
               say: Callable[[str], None] | None = None) -> None:
    """A request for more `kind` ("CPU", "GPU") than the cluster has would wait forever. On a private
    cluster (`strict`) that is an error naming the flag (`asked`, e.g. "--gpus-per-trial 2"); on a
    joined one a warning, since an autoscaler may still add the nodes."""
    if want <= have + 1e-9:
        return
    msg = f"{asked} needs {want:g} {kind}s; the Ray cluster has {have:g}, so no {what} could start"
    if strict:
        raise ConfigError(msg)
    (say or (lambda m: print(f"cropray: {m}", file=sys.stderr)))(f"warning: {msg} unless the cluster grows")
