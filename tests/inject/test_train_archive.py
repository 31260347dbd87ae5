"""Training with --archive: injected crops enter training parts only; labels alone judge; auto compares."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cropray.archive import write_archive
from cropray.cli import main
from cropray.synth import SynthConfig, generate, synth_archive
from cropray.train import TrainConfig
from cropray.train.archive_data import PAIRED_COPY, PLAIN_COPY, UNLABELLED, ExtraCrops
from cropray.train.auto import candidates, compare_candidates
from cropray.train.cv import cross_validate
from cropray.train.loop import Trainer

FAST = {"epoch_crops": 32, "batch_size": 16}


def _labels(n=30, seed=1):
    b = generate(n, SynthConfig(snr_range=(20.0, 100.0)), seed=seed)
    return b.crops[:, None], b.label.astype(np.int64)


def _extra(m=200, seed=2):
    b = generate(m, SynthConfig(), seed=seed)
    return ExtraCrops(b.crops[:, None], b.label, real_share=0.5, per_epoch=64)


def test_epoch_mixes_real_and_archive_crops_at_the_real_share():
    x, y = _labels()
    ex = _extra()
    t = Trainer(TrainConfig(arch="shallow_cnn", epochs=1, **FAST).resolve("shallow_cnn"), x, y, extra=ex)
    idx = t._order().numpy()
    real, arch = idx[idx < len(y)], idx[idx >= len(y)] - len(y)
    assert len(arch) == 64 and len(set(arch)) == 64 and arch.max() < len(ex)  # a fresh subset, no repeats
    assert len(real) == 64 and set(real) == set(range(len(y)))  # real_share 0.5, every label seen
    t2 = Trainer(TrainConfig(arch="shallow_cnn", epochs=1, **FAST).resolve("shallow_cnn"), x[:20], y[:20], extra=ex)
    assert t2.held_extra[0] is t.held_extra[0]  # normalised once, shared by every fold's trainer


def test_cv_scores_and_thresholds_use_real_labels_only():
    x, y = _labels()
    ex = _extra()
    cfg = TrainConfig(arch="shallow_cnn", epochs=1, **FAST)
    cv = cross_validate(cfg, x, y, k=2, extra=ex, progress=False, n_boot=50)
    assert cv.oof_scores.shape == (len(y),) and np.isfinite(cv.oof_scores).all()
    plain = cross_validate(cfg, x, y, k=2, progress=False, n_boot=50)
    np.testing.assert_array_equal(cv.fold, plain.fold)  # the same folds with or without the archive
    assert not np.array_equal(cv.oof_scores, plain.oof_scores)  # and the archive crops did train


def test_auto_compares_the_candidates_on_the_same_folds():
    assert candidates(40, True) == [("dedoppler", False), ("shallow_cnn", False), ("shallow_cnn", True)]
    assert ("deep_cnn", True) in candidates(600, True) and ("dedoppler", False) in candidates(600, False)
    x, y = _labels()
    ch = compare_candidates(TrainConfig(epochs=1, **FAST), x, y, k=2)
    aucs = [r["cv_auc"] for r in ch.table]
    assert [r["arch"] for r in ch.table] == ["dedoppler", "shallow_cnn"]
    chosen = [r for r in ch.table if r["chosen"]]
    assert len(chosen) == 1 and chosen[0]["arch"] == ch.cfg.arch and len(aucs) == 2
    assert chosen[0]["arch"] == "dedoppler" or chosen[0]["gain_vs_incumbent"]["proven"]  # the paired rule
    assert "on the same 2 folds" in ch.reason


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("arch")
    synth_archive(root / "labels", 30, labeled=True, seed=1, snr_range=(20.0, 100.0))
    synth_archive(root / "archive", 400, files=2, seed=3)
    return root


def test_cli_train_with_archive_records_it_in_the_bundle(sets, tmp_path, capsys):
    argv = ["train", str(sets / "labels"), "--out", str(tmp_path / "m"), "--arch", "shallow_cnn", "--epochs", "1",
            "--folds", "2", "--config", json.dumps(FAST), "--archive", str(sets / "archive"),
            "--archive-crops", "300", "--inject-config", '{"per_epoch": 32, "min_backgrounds": 10}', "--json"]
    assert main(argv) == 0
    s = json.loads(capsys.readouterr().out)
    a = s["archive"]
    assert a["drawn"] == 300 and a["usable"] == 300 - a["excluded"] and a["injected"] + a["plain"] == a["usable"]
    assert len(a["archive_fingerprint"]) == 64 and a["settings"]["archive_crops"] == 300
    man = json.loads((tmp_path / "m" / "manifest.json").read_text())
    recorded = json.dumps(man)
    assert a["archive_fingerprint"] in recorded and '"excluded_rule"' in recorded


def test_cli_archive_errors(sets, tmp_path, capsys):
    small = tmp_path / "small"
    b = generate(20, SynthConfig(time_bins=32, freq_channels=32), seed=0)
    write_archive(small, {"crop_id": np.array([f"s{i}" for i in range(20)], dtype=object)}, b.crops)
    base = ["train", str(sets / "labels"), "--out", str(tmp_path / "m"), "--arch", "shallow_cnn", "--epochs", "1"]
    assert main([*base, "--archive", str(small)]) == 2
    err = capsys.readouterr().err
    assert "32x32" in err and "64x64" in err and "Traceback" not in err
    assert main([*base, "--archive-crops", "10"]) == 2
    assert "need --archive" in capsys.readouterr().err
    assert main([*base, "--archive", str(sets / "archive"), "--inject-config", '{"kinds": "spiral"}']) == 2
    assert "--inject-config" in capsys.readouterr().err


def test_paired_crops_are_drawn_as_pairs_and_train():
    x, y = _labels()
    b = generate(100, SynthConfig(positive_fraction=0.0), seed=4)
    plain = b.crops[:, None]
    inj = plain.copy()
    inj[:, 0, :, 30:32] *= 3.0  # a bright line: the "signal"
    ex = ExtraCrops(np.concatenate([plain, inj]), np.r_[np.full(100, UNLABELLED), np.ones(100)], real_share=0.5,
                    per_epoch=64, plain="paired")
    assert len(ex) == 100 and ex.draws() == 32  # 64 crops = 32 pairs
    cfg = TrainConfig(arch="shallow_cnn", epochs=2, **FAST).resolve("shallow_cnn")
    t = Trainer(cfg, x, y, extra=ex)
    idx = t._order()
    assert (idx >= len(y)).sum() == 32 and (idx < len(y)).sum() == 64  # real crops: half of the 128 crops
    xb, yb = ex.gather(t.x, t.y, t.held_extra, idx[:16])
    k = int((yb == PLAIN_COPY).sum())
    assert k == int((yb == PAIRED_COPY).sum()) and len(xb) == len(yb) == 16 + k
    r = 16 - k  # real crops first, then the pairs' plain copies, then their injected copies
    assert set(yb[:r].tolist()) <= {0, 1} and (yb[r:r + k] == PLAIN_COPY).all() and (yb[r + k:] == PAIRED_COPY).all()
    plain_x, inj_x = xb[yb == PLAIN_COPY], xb[yb == PAIRED_COPY]
    assert (inj_x[..., 30:32].mean(dim=(1, 2, 3)) > plain_x[..., 30:32].mean(dim=(1, 2, 3))).all()  # same order
    while not t.done:
        assert np.isfinite(t.run_epoch().train_loss)
    with pytest.raises(ValueError, match="U plain copies"):
        ExtraCrops(plain, np.ones(100), plain="paired")
    with pytest.raises(ValueError, match="need plain='pu' or 'paired'"):
        ExtraCrops(plain, np.full(100, UNLABELLED))
