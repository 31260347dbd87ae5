"""Bundles: round trip reproduces scores exactly; every kind of damage is refused with a BundleError."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from cropray.bundle import BundleManifest, load_bundle, save_bundle
from cropray.errors import BundleError, CroprayError
from cropray.models import build_model, list_models


def crops(b: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 5.0 * torch.empty(b, 1, 64, 64).exponential_(generator=g)


def trained_like(name: str):
    """A model with non-default state: BN running stats from real batches, a Siamese gallery."""
    torch.manual_seed(0)
    m = build_model(name)
    bns = [mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.momentum = None  # cumulative average: running stats become the batch statistics
    m.train()
    with torch.no_grad():
        if bns:
            m.embed(crops(8, 1)) if name == "siamese" else m.logits(crops(8, 1))
        m.eval()
        if name == "siamese":
            m.set_gallery(m.embed(crops(10, 2)), torch.tensor([1, 0] * 5))
    for bn in bns:
        bn.momentum = 0.1
    return m


def save(m, path, **kw):
    args = {"threshold": 0.42, "train_summary": {"n_labels": 10, "input_shape": [64, 64]},
            "metrics": {"roc_auc": np.float64(0.9), "pr_auc": float("nan")}}
    return save_bundle(m, path, **{**args, **kw})


@pytest.mark.parametrize("name", list_models())
def test_round_trip_reproduces_scores_exactly(tmp_path, name):
    m = trained_like(name)
    calib = crops(4, 3).numpy()
    out = save(m, tmp_path / "b", calibration_crops=calib, extra={"seed": 7})
    b = load_bundle(out)
    x = crops(6, 4)
    with torch.no_grad():
        assert torch.equal(b.model(x), m(x))
    assert not b.model.training and all(v.device.type == "cpu" for v in b.model.state_dict().values())
    assert b.threshold == 0.42 and b.input_shape == (64, 64)
    assert b.model_id == f"{name}-{b.bundle_sha256[:12]}" and len(b.bundle_sha256) == 64
    np.testing.assert_array_equal(b.calibration_crops, calib)
    man = b.manifest
    assert man["format_version"] == 2 and man["arch"] == name and man["hparams"] == m.hparams
    assert man["metrics"] == {"roc_auc": 0.9, "pr_auc": None}  # numpy -> float, NaN -> null
    assert set(man["files"]) == {"model.safetensors", "calibration.safetensors"}
    assert {"cropray_version", "torch_version", "created", "preprocessing"} <= set(man.to_dict())
    # data, never code: JSON + safetensors only, and no temp dirs left behind
    assert sorted(p.name for p in out.iterdir()) == ["calibration.safetensors", "manifest.json",
                                                     "model.safetensors"]
    assert [p.name for p in tmp_path.iterdir()] == ["b"]


def test_resaving_the_same_model_keeps_the_model_id(tmp_path):
    m = trained_like("siamese")
    a = load_bundle(save(m, tmp_path / "a"))
    for i in range(3):  # safetensors must serialise identically every time (metadata order too)
        b = load_bundle(save(m, tmp_path / f"b{i}"))
        assert b.manifest["files"] == a.manifest["files"]
    assert a.model_id == b.model_id and a.manifest["model_state"]["gallery_size"] == 10
    c = load_bundle(save(m, tmp_path / "c", threshold=0.5))  # a different decision is a different model
    assert c.model_id != a.model_id


def test_siamese_without_gallery_is_refused(tmp_path):
    with pytest.raises(BundleError, match="no gallery"):
        save(build_model("siamese"), tmp_path / "b")


def test_model_with_replaced_preprocess_is_refused(tmp_path):
    m = trained_like("shallow_cnn")
    m.preprocess = torch.nn.Identity()  # what a pre-normalised training loop does between epochs
    with pytest.raises(BundleError, match="preprocess was replaced"):
        save(m, tmp_path / "b")


def test_existing_directory_needs_overwrite(tmp_path):
    m = trained_like("shallow_cnn")
    out = save(m, tmp_path / "b")
    with pytest.raises(CroprayError, match="already exists and is not empty; pass --overwrite"):
        save(m, out)
    save(m, out, threshold=0.9, overwrite=True)
    assert load_bundle(out).threshold == 0.9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # old copy and temp dir removed
    (tmp_path / "empty").mkdir()
    save(m, tmp_path / "empty")  # an empty directory is fine


@pytest.fixture
def bundle_dir(tmp_path) -> Path:
    return save(trained_like("shallow_cnn"), tmp_path / "b", calibration_crops=crops(2, 5).numpy())


def edit_manifest(path: Path, **changes) -> None:
    """Change manifest keys and re-compute its digest (what someone who read the code could do): the
    checks behind the digest must still hold."""
    man = json.loads((path / "manifest.json").read_text())
    man.update(changes)
    body = {k: v for k, v in man.items() if k not in ("created", "bundle_sha256")}
    man["bundle_sha256"] = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    (path / "manifest.json").write_text(json.dumps(man))


def test_tampered_weights_are_refused(bundle_dir):
    f = bundle_dir / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[-3] ^= 0x01  # one bit of one weight
    f.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model.safetensors: sha256 mismatch — the bundle was modified"):
        load_bundle(bundle_dir)


def test_missing_file_is_refused(bundle_dir):
    (bundle_dir / "calibration.safetensors").unlink()
    with pytest.raises(BundleError, match="calibration.safetensors: listed in manifest.json but missing"):
        load_bundle(bundle_dir)


def test_unknown_arch_is_refused(bundle_dir):
    edit_manifest(bundle_dir, arch="vit_huge")
    with pytest.raises(BundleError, match="unknown architecture 'vit_huge'; this cropray knows dedoppler"):
        load_bundle(bundle_dir)


def test_newer_and_older_formats_are_refused(bundle_dir):
    edit_manifest(bundle_dir, format_version=3)
    with pytest.raises(BundleError, match=r"bundle format 3 is newer than this cropray supports \(max 2\); "
                                          "upgrade cropray"):
        load_bundle(bundle_dir)
    edit_manifest(bundle_dir, format_version=1)  # format 1 had no digest: it could not be checked
    with pytest.raises(BundleError, match="bundle format 1 has no manifest digest"):
        load_bundle(bundle_dir)


def test_manifest_is_a_frozen_object_and_its_digest_is_the_model_id(bundle_dir):
    b = load_bundle(bundle_dir)
    m = b.manifest
    assert isinstance(m, BundleManifest) and m.digest() == m.bundle_sha256 == b.bundle_sha256
    with pytest.raises(AttributeError):
        m.threshold = 0.1  # frozen: nothing edits a manifest from outside
    m.to_dict()["hparams"]["channels"] = [1]  # a copy: the manifest is unchanged
    assert m.hparams != {"channels": [1]} and m["threshold"] == m.threshold == 0.42


@pytest.mark.parametrize("change,match", [
    ({"format_version": "1"}, "format_version '1' is missing or not a known"),
    ({"hparams": {"channels": [32, 64, 128], "dropuot": 0.5}}, "unknown hyperparameter"),
    ({"hparams": {"channels": [16, 64, 128]}}, r"do not fit 'shallow_cnn'.*features.0.0.weight: "
                                              r"file \(32, 1, 3, 3\) vs model \(16, 1, 3, 3\)"),
    ({"files": {"model.safetensors": "0" * 64, "../x": "0" * 64}}, "must be a plain name"),
    ({"threshold": None}, "threshold=None must be a number"),
    ({"input_shape": [64, 100000]}, r"input_shape \[64, 100000\] must be within 1..4096"),
    ({"surprise": 1}, "unknown key"),
])
def test_inconsistent_manifest_is_refused(bundle_dir, change, match):
    edit_manifest(bundle_dir, **change)
    with pytest.raises(BundleError, match=match):
        load_bundle(bundle_dir)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="not found"):
        load_bundle(tmp_path / "nope")
    (tmp_path / "d").mkdir()
    with pytest.raises(BundleError, match=r"no model bundle here \(no manifest.json\)"):
        load_bundle(tmp_path / "d")
    (tmp_path / "d" / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(tmp_path / "d")


def test_bundle_code_never_unpickles():
    src = (Path(__file__).parents[1] / "cropray" / "bundle.py").read_text()
    assert not re.search(r"(?<!safetensors\.)torch\.load\(|import pickle|pickle\.", src)
