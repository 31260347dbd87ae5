"""`cropray tune --archive` on the shared 2-CPU Ray session: injected crops built once in the driver and
in every trial's training folds; the winner's out-of-fold work decides, without cross-validating
again, that physics ships (its threshold from --target-fpr on the archive); bad archive input and a
resumed sweep on another archive."""

import json
from pathlib import Path

import numpy as np
from conftest import TINY_FIXED

from cropray.archive import read_labeled, write_archive
from cropray.bundle import load_bundle
from cropray.cli import main
from cropray.inject import InjectConfig
from cropray.synth import SynthConfig, generate
from cropray.train import TrainConfig
from cropray.train.archive_data import archive_extra
from cropray.train.cv import cross_validate
from cropray.tune.oof import fold_assignment

INJECT = {"per_epoch": 32, "min_backgrounds": 10}


def _records(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "trials").glob("trial-*.json"))]


def test_cli_sweep_with_archive_ships_physics_when_the_winner_is_unproven(ray_local, labels60, archive300, tmp_path, capsys,
                                                           monkeypatch):
    import cropray.train.cv as cv_module

    def no_cv(*a, **k):  # the driver's retrain must not cross-validate (trials run in Ray workers)
        raise AssertionError("the retrain cross-validated the winner again")

    monkeypatch.setattr(cv_module, "cross_validate", no_cv)  # where the refit's CV strategies look it up
    arch = tmp_path / "archive"  # the archive plus one unreadable file: skipped, named, exit 1
    arch.mkdir()
    for p in archive300.glob("*.parquet"):
        (arch / p.name).write_bytes(p.read_bytes())
    (arch / "broken.parquet").write_bytes(b"PAR1 not really parquet")
    out = tmp_path / "out"
    argv = ["tune", str(labels60), "--out", str(out), "--samples", "2", "--epochs", "2", "--folds", "2",
            "--max-concurrent", "2", "--search", "random", "--seed", "1", "--fixed", json.dumps(TINY_FIXED),
            "--archive", str(arch), "--archive-crops", "300", "--inject-config", json.dumps(INJECT), "--json",
            "--target-fpr", "0.01"]
    assert main(argv) == 1  # the unreadable file needs attention
    s = json.loads(capsys.readouterr().out)
    a = s["archive"]
    inject = InjectConfig(archive_crops=300, seed=1, **INJECT)
    assert a["drawn"] == 300 and a["injected"] + a["plain"] == a["usable"] > 100 and a["settings"] == inject.to_dict()
    assert [Path(f["file"]).name for f in a["files_failed"]] == ["broken.parquet"]
    assert json.loads((out / "data.json").read_text())["archive"]["fingerprint"] == a["archive_fingerprint"]

    ls = read_labeled(labels60)
    best = next(r for r in _records(out) if r["trial_id"] == s["best"]["trial_id"])
    oof = best["oof"]
    assert len(oof["scores"]) == 60 and oof["fold"] == fold_assignment(ls.y, 2, 1).tolist()
    # Bright labels: physics is near perfect, the winner's paired gain over it is not proven, so the bundle
    # is dedoppler -- never refit, never cross-validated in the driver (no_cv above) -- and its threshold
    # follows --target-fpr on held-back screened archive backgrounds, as `cropray train` would set it.
    g = s["bundle"]["gain_vs_physics"]  # the winner's paired gain over dedoppler on the same 60 crops
    assert g["lo"] <= g["gain"] <= g["hi"] and not g["proven"]
    assert s["bundle"]["arch"] == "dedoppler" and "not proven" in s["bundle"]["physics"]
    man = load_bundle(out / "bundle").manifest
    ts = man["train_summary"]
    rule = ts["threshold"]
    assert rule["rule"] == "target_fpr" and rule["target_fpr"] == 0.01 and man["threshold"] == rule["threshold"]
    assert s["bundle"]["threshold"] == rule["threshold"] and 0 < rule["n_backgrounds"] == ts["archive"][
        "held_back_for_threshold"]
    assert ts["archive"]["archive_fingerprint"] == a["archive_fingerprint"] and ts["final_epochs"] == 0
    assert man["extra"]["sweep"]["cv_source"] == s["bundle"]["cv_source"] and "dedoppler" in s["bundle"]["cv_source"]
    assert man["extra"]["sweep"]["winner_gain_vs_physics"] == g

    # The trial trained with the archive's crops in its folds: its out-of-fold scores are those of
    # cross_validate with them (same config, seed, folds), and not those without them.
    import torch

    cfg = TrainConfig.from_dict(s["best"]["config"]).replace(device="cpu")
    crops, _ = archive_extra(arch, ls.x, ls.y, inject)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the trial: the same arithmetic, so the same scores
    try:
        with_archive = cross_validate(cfg, ls.x, ls.y, k=2, progress=False, n_boot=0, extra=crops)
        without = cross_validate(cfg, ls.x, ls.y, k=2, progress=False, n_boot=0)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_allclose(with_archive.oof_scores, oof["scores"], rtol=1e-4, atol=1e-6)
    assert not np.allclose(without.oof_scores, oof["scores"], rtol=1e-4, atol=1e-6)

    # A resumed sweep refuses another archive or other injection settings (before any trial).
    base = ["tune", str(labels60), "--out", str(out), "--resume"]
    assert main([*base, "--archive", str(archive300)]) == 2
    assert f"started on the archive {arch}" in capsys.readouterr().err
    assert main([*base, "--archive", str(arch), "--archive-crops", "200"]) == 2
    assert "archive_crops 200 (sweep: 300)" in capsys.readouterr().err


def test_bad_archive_input_exits_like_train(labels60, tmp_path, capsys):
    small = tmp_path / "small"
    b = generate(20, SynthConfig(time_bins=32, freq_channels=32), seed=0)
    write_archive(small, {"crop_id": np.array([f"s{i}" for i in range(20)], dtype=object)}, b.crops)
    base = ["tune", str(labels60), "--out", str(tmp_path / "o")]
    assert main([*base, "--archive", str(small)]) == 2
    err = capsys.readouterr().err
    assert "32x32" in err and "64x64" in err and "Traceback" not in err
    assert main([*base, "--archive-crops", "10"]) == 2
    assert "need --archive" in capsys.readouterr().err
    assert main([*base, "--archive", str(small), "--inject-config", '{"kinds": "spiral"}']) == 2
    assert "--inject-config" in capsys.readouterr().err
    assert main([*base, "--target-fpr", "0.01"]) == 2  # the refit's threshold needs the archive's backgrounds
    assert "--target-fpr needs --archive" in capsys.readouterr().err
    assert not (tmp_path / "o" / "data.json").exists()  # refused before any sweep state
