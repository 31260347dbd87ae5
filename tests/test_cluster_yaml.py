"""cluster.yaml is checked offline against Ray's own cluster-launcher schema."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _cfg():
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def test_cluster_yaml_passes_rays_validator():
    from ray.autoscaler._private.util import prepare_config, validate_config

    cfg = _cfg()
    validate_config(prepare_config(copy.deepcopy(cfg)))
    types = cfg["available_node_types"]
    assert {"head.cpu", "worker.cpu", "worker.gpu"} <= set(types)
    assert all("resources" in t for t in types.values())
    assert types["worker.gpu"]["resources"]["GPU"] == 1


def test_cluster_keeps_auth_on_and_dashboard_private():
    cfg = _cfg()
    head = " ".join(cfg["head_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in head and "--dashboard-host=127.0.0.1" in head
    assert "0.0.0.0" not in head
    assert all("RAY_AUTH_MODE=token" in c for c in cfg["worker_start_ray_commands"] if "ray start" in c)
    assert "~/.ray/auth_token" in cfg["file_mounts"]


def test_validator_rejects_an_unknown_key():
    from ray.autoscaler._private.util import prepare_config, validate_config

    cfg = _cfg()
    cfg["not_a_key"] = 1
    from jsonschema.exceptions import ValidationError  # Ray's validator is JSON-schema based

    with pytest.raises(ValidationError, match="not_a_key"):
        validate_config(prepare_config(cfg))
