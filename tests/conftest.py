"""Shared fixtures. One local Ray cluster per test session (`ray.init(num_cpus=2)`), started lazily."""

from __future__ import annotations

import os
import tempfile

import pytest

# Token auth stays on (Ray's default for a local cluster); say so explicitly so a developer's
# environment cannot silently change what the tests exercise.
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
# Keep CI logs readable: no live progress bars when not on a TTY.
os.environ.setdefault("TQDM_DISABLE", "1")
# Nothing a test runs may read or write the developer's home: cropray's cache (ONNX graphs) and matplotlib's
# font cache go to a folder of this session. Set before Ray starts, so every Ray worker inherits it too;
# `_isolated_cache` below gives each test's driver-side code a fresh folder of its own.
_SESSION_TMP = tempfile.mkdtemp(prefix="cropray-tests-")
os.environ["CROPRAY_CACHE_DIR"] = os.path.join(_SESSION_TMP, "cache")
os.environ["MPLCONFIGDIR"] = os.path.join(_SESSION_TMP, "mpl")
os.environ["XDG_CACHE_HOME"] = os.path.join(_SESSION_TMP, "xdg-cache")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test starts with an empty cropray cache, so no outcome depends on what ran before."""
    monkeypatch.setenv("CROPRAY_CACHE_DIR", str(tmp_path_factory.mktemp("cropray-cache")))


@pytest.fixture(scope="session")
def ray_local():
    """The shared local Ray cluster for this test session (2 CPUs, like CI)."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    # Left running until the session ends; pytest_sessionfinish shuts it down.


def pytest_sessionfinish(session, exitstatus):
    try:
        import ray

        if ray.is_initialized():
            ray.shutdown()
    except Exception:
        pass
    import shutil

    shutil.rmtree(_SESSION_TMP, ignore_errors=True)
