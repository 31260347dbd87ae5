"""cropray.ray_session's rules that need no cluster of their own: the one resource check, the
absolute-path rule on a joined cluster, the fast probe; and reuse of an initialised Ray."""

from __future__ import annotations

import socket

import pytest

from cropray.errors import ConfigError, CroprayError
from cropray.ray_session import check_fits, open_session, probe, require_absolute


def test_check_fits_refuses_on_a_private_cluster_and_warns_on_a_joined_one():
    check_fits("GPU", 1, 1, asked="--gpus-per-trial 1", what="trial", strict=True)  # fits: silent
    with pytest.raises(ConfigError, match=r"--gpus-per-trial 2 needs 2 GPUs; the Ray cluster has 1, so no trial"):
        check_fits("GPU", 2, 1, asked="--gpus-per-trial 2", what="trial", strict=True)
    said: list[str] = []
    check_fits("CPU", 8, 2, asked="--cpus-per-trial 8", what="trial", strict=False, say=said.append)
    assert said == ["warning: --cpus-per-trial 8 needs 8 CPUs; the Ray cluster has 2, so no trial could start "
                    "unless the cluster grows"]


def test_relative_paths_are_refused_only_on_a_joined_cluster(monkeypatch, tmp_path):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    require_absolute("rel", "--out", None)  # embedded: relative to the current directory, fine
    require_absolute(tmp_path, "--out", "127.0.0.1:6379")
    with pytest.raises(ConfigError, match=r"--out rel: give an absolute path .* --address 127.0.0.1:6379"):
        require_absolute("rel", "--out", "127.0.0.1:6379")
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    with pytest.raises(ConfigError, match=r"RAY_ADDRESS \(a Ray job\)"):
        require_absolute("rel", "--out", None)


def test_probe_names_a_dead_address_fast():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(CroprayError, match=rf"--address 127.0.0.1:{port}: cannot reach"):
        probe(f"127.0.0.1:{port}")
    with pytest.raises(CroprayError, match="expected HOST:PORT"):
        probe("nonsense")


def test_an_initialised_ray_is_reused_and_left_running(ray_local, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    s = open_session()
    assert (s.kind, s.started, s.private) == ("reused", False, False)  # not ours: its size is not ours to know
    assert s.resources().cpus == 2.0
    s.close()
    assert ray_local.is_initialized()


def test_auth_token_is_made_private(tmp_path):
    """Ray writes its token 0644; anyone who reads it can run code on the cluster."""
    from cropray.ray_session import _make_token_private

    folder = tmp_path / ".ray"
    folder.mkdir(mode=0o755)
    token = folder / "auth_token"
    token.write_text("x" * 64)
    token.chmod(0o644)
    _make_token_private(token)
    assert token.stat().st_mode & 0o777 == 0o600
    assert folder.stat().st_mode & 0o777 == 0o700
