"""A bundle's manifest is integrity-checked like its weights, through the real CLI.

Each case starts from a bundle that `cropray eval` accepts (the control), damages it the way a hostile
user would, and expects exit 2 with a message naming the file, before any model is built.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from cropray.bundle import save_bundle
from cropray.cli import main
from cropray.errors import BundleError
from cropray.models import build_model


@pytest.fixture(scope="module")
def labels(tmp_path_factory):
    from cropray.synth import synth_archive

    out = tmp_path_factory.mktemp("labels")
    synth_archive(out, 40, labeled=True, seed=3)
    return out


@pytest.fixture
def bundle(tmp_path, labels, capsys):
    m = build_model("shallow_cnn", channels=[4, 4, 4]).eval()
    b = save_bundle(m, tmp_path / "b", threshold=0.5, train_summary={"input_shape": [64, 64]}, metrics={})
    assert main(["eval", str(b), str(labels)]) == 0  # the control: this bundle is accepted as written
    capsys.readouterr()
    return b


def _manifest(b):
    return json.loads((b / "manifest.json").read_text())


def _write(b, man, *, redigest: bool) -> None:
    if redigest:  # what someone who read bundle_manifest.py could do
        body = {k: v for k, v in man.items() if k not in ("created", "bundle_sha256")}
        canon = json.dumps(body, sort_keys=True, separators=(",", ":"))
        man["bundle_sha256"] = hashlib.sha256(canon.encode()).hexdigest()
    (b / "manifest.json").write_text(json.dumps(man, indent=2))


def _refused(b, labels, capsys, *needles) -> str:
    assert main(["eval", str(b), str(labels)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


def test_an_edited_threshold_is_refused(bundle, labels, capsys, tmp_path):
    man = _manifest(bundle)
    man["threshold"] = 0.01  # every crop would be called a signal
    _write(bundle, man, redigest=False)
    _refused(bundle, labels, capsys, "manifest.json", "was modified after the bundle was written")
    # the scoring driver checks the same, before any Ray work
    assert main(["score", str(bundle), str(labels), str(tmp_path / "scores")]) == 2
    assert "manifest.json" in capsys.readouterr().err
    assert not (tmp_path / "scores").exists()


@pytest.mark.parametrize("value,needle", [(-1e308, "absurd"), (1e6, "absurd"), (float("nan"), "absurd")])
def test_an_absurd_threshold_with_a_recomputed_digest_is_refused(bundle, labels, capsys, value, needle):
    man = _manifest(bundle)
    man["threshold"] = value
    if value != value:  # NaN: JSON cannot hold it in canonical form, so no digest can be computed
        (bundle / "manifest.json").write_text(json.dumps(man))  # Python's json writes a bare NaN
    else:
        _write(bundle, man, redigest=True)
    _refused(bundle, labels, capsys, "manifest.json", needle, "threshold")


def test_a_weight_file_linked_outside_the_bundle_is_refused(bundle, labels, capsys, tmp_path):
    outside = tmp_path / "elsewhere.safetensors"
    shutil.copy(bundle / "model.safetensors", outside)  # same bytes: its sha256 matches the manifest
    (bundle / "model.safetensors").unlink()
    (bundle / "model.safetensors").symlink_to(outside)
    _refused(bundle, labels, capsys, "model.safetensors", "outside the bundle")


def test_a_link_inside_the_bundle_and_a_linked_bundle_directory_are_fine(bundle, labels, capsys, tmp_path):
    (bundle / "weights.bin").write_bytes((bundle / "model.safetensors").read_bytes())
    (bundle / "model.safetensors").unlink()
    (bundle / "model.safetensors").symlink_to("weights.bin")  # relative, stays inside
    (tmp_path / "alias").symlink_to(bundle)
    assert main(["eval", str(tmp_path / "alias"), str(labels)]) == 0, capsys.readouterr().err


def test_read_manifest_verifies_without_building_the_model(bundle):
    from cropray.bundle_manifest import read_manifest

    m = read_manifest(bundle)
    assert m.model_id.startswith("shallow_cnn-") and m.threshold == 0.5 and m.input_shape == (64, 64)
    data = bytearray((bundle / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (bundle / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model.safetensors: sha256 mismatch"):
        read_manifest(bundle)
