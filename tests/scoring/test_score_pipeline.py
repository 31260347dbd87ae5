"""The Ray Data pipeline on the shared 2-CPU session: exact scores, bad input, reruns, refusals."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from conftest import write_bad_archive, write_good

from cropray.archive import read_labeled
from cropray.bundle import load_bundle
from cropray.cli import main
from cropray.fastpath import TOLERANCE
from cropray.models import list_models
from cropray.scoring import ScoreConfig, score_archive
from cropray.scoring.manifest import Manifest
from cropray.scoring.result import ScoreResult

ONE_ACTOR = dict(actors=(1, 1), cpus_per_actor=0.5, precision="fp32", batch_size=32)


def cli(capsys, *args):
    rc = main(["score", *map(str, args), "--json"])
    out = capsys.readouterr().out
    return rc, (json.loads(out) if out.strip() else None)


@pytest.mark.parametrize("arch", list_models())
def test_pipeline_scores_equal_in_process_scores(ray_local, tmp_path, bundle_dir, arch):
    write_good(tmp_path / "in", 48, files=3)
    s = score_archive(ScoreConfig(bundle=str(bundle_dir(arch)), input=str(tmp_path / "in"),
                                  output=str(tmp_path / "out"), keep=("obs",), **ONE_ACTOR))
    assert s.rows_scored == 48 and s.rows_read == 48 and s.reconciled and s.state == "complete"
    assert isinstance(s, ScoreResult) and s.duplicates.crop_ids == 0 and s.actors and s.actors[0].rows == 48
    # the manifest holds the same result the call returned (a no-op rerun reports it again)
    assert Manifest.load(tmp_path / "out").result().rows_scored == 48
    df = pd.read_parquet(tmp_path / "out")  # plain pandas: the scores only, one table
    assert list(df.columns) == ["crop_id", "score", "is_signal", "model_id", "obs"] and len(df) == 48
    assert df["score"].dtype == np.float32 and df["crop_id"].is_unique
    # reference: the bundle's eager model as trained (not the fast path the actors ran), on crops read
    # back by the library's labelled-set reader, outside Ray
    b = load_bundle(bundle_dir(arch))
    ls = read_labeled(str(tmp_path / "in"), require_label=False)
    with torch.inference_mode():
        ref = pd.Series(b.model.eval()(torch.from_numpy(ls.x)).numpy(), index=ls.crop_id)
    got = df.set_index("crop_id")
    np.testing.assert_allclose(got["score"].to_numpy(), ref[got.index].to_numpy(), rtol=0, atol=TOLERANCE["fp32"])
    assert (got["is_signal"] == (got["score"] >= b.threshold)).all()
    clear = (ref[got.index] - b.threshold).abs().to_numpy() > TOLERANCE["fp32"]
    assert (got["is_signal"].to_numpy()[clear] == (ref[got.index] >= b.threshold).to_numpy()[clear]).all()
    assert (df["model_id"] == b.model_id).all() and s["positives"] == int(df["is_signal"].sum())


def test_bad_rows_and_corrupt_files_reconcile_and_exit_1(ray_local, tmp_path, bundle_dir, capsys):
    expect = write_bad_archive(tmp_path / "bad")
    rc, s = cli(capsys, bundle_dir(), tmp_path / "bad", tmp_path / "out", "--actors", "1", "--cpus-per-actor", "0.5",
                "--keep", "obs")
    assert rc == 1
    assert s["reasons"] == expect["reasons"] and s["rows_quarantined"] == expect["quarantined"]
    assert s["rows_read"] == expect["read"] == s["rows_scored"] + s["rows_quarantined"] and s["reconciled"]
    assert sorted(f["file"].rsplit("/", 1)[-1] for f in s["failed"]) == expect["failed"]
    q = pd.read_parquet(tmp_path / "out" / "_quarantine")
    assert set(q.columns) == {"crop_id", "source_file", "row", "reason"}
    where = {(r.source_file.rsplit("/", 1)[-1], r.row): r.reason for r in q.itertuples()}
    assert where == {("a.parquet", 3): "non_finite", ("a.parquet", 7): "non_finite", ("a.parquet", 11): "null_crop",
                     ("a.parquet", 15): "missing_crop_id", ("b.parquet", 2): "wrong_length", ("b.parquet", 5): "non_finite"}
    scores = pd.read_parquet(tmp_path / "out")
    assert len(scores) == s["rows_scored"] and not scores["crop_id"].str.startswith("e").any()
    m = json.loads((tmp_path / "out" / "_manifest.json").read_text())
    files = {f["file"].rsplit("/", 1)[-1]: f for f in m["files"]}
    assert files["e.parquet"]["status"] == "failed" and "read failed" in files["e.parquet"]["error"]
    assert files["a.parquet"] | {"read": 40, "scored": 36, "quarantined": 4, "status": "done"} == files["a.parquet"]
    assert set(m["versions"]) >= {"cropray", "ray", "torch", "pyarrow"} and m["model"]["bundle_sha256"]


def test_rerun_is_noop_other_model_refused_overwrite_starts_over(ray_local, tmp_path, bundle_dir, capsys):
    write_good(tmp_path / "in", 40, files=2, id_prefix="dup")
    write_good(tmp_path / "in", 4, files=1, prefix="again", id_prefix="dup")  # 4 ids seen twice
    args = (bundle_dir(), tmp_path / "in", tmp_path / "out", "--actors", "1", "--cpus-per-actor", "0.5")
    rc, s = cli(capsys, *args)
    assert rc == 1 and s["duplicates"]["crop_ids"] == 4 and s["rows_scored"] == 44  # duplicates: attention
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("*.parquet")}
    rc, s2 = cli(capsys, *args)
    assert s2["noop"] and s2["rows_this_run"] == 0 and s2["rows_scored"] == 44 and rc == 1
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("*.parquet")} == before
    assert main(["score", *map(str, args), "--keep", "obs"]) == 2  # another output schema
    assert "other settings" in capsys.readouterr().err
    other = bundle_dir("deep_cnn")
    assert main(["score", str(other), *map(str, args[1:])]) == 2
    assert "holds scores of model shallow_cnn" in capsys.readouterr().err
    rc, s3 = cli(capsys, other, *args[1:], "--overwrite")
    assert s3["model_id"].startswith("deep_cnn") and s3["rows_scored"] == 44 and not s3["resumed"]
    assert set(pd.read_parquet(tmp_path / "out")["model_id"]) == {s3["model_id"]}
    assert len(list((tmp_path / "out").glob("*.parquet"))) == 3


def test_resume_scores_only_missing_units(ray_local, tmp_path, bundle_dir):
    """A run that stopped after some units (simulated by deleting a unit's record) redoes only those."""
    write_good(tmp_path / "in", 60, files=3)
    cfg = dict(bundle=str(bundle_dir()), input=str(tmp_path / "in"), output=str(tmp_path / "out"), **ONE_ACTOR)
    score_archive(ScoreConfig(**cfg))
    mf = tmp_path / "out" / "_manifest.json"
    m = json.loads(mf.read_text())
    key = sorted(m["units"])[1]
    del m["units"][key]  # as if killed after the rename but before the manifest recorded it
    mf.write_text(json.dumps(m))
    (tmp_path / "out" / "_tmp").mkdir()
    (tmp_path / "out" / "_tmp" / "junk.parquet").write_bytes(b"half-written")
    s = score_archive(ScoreConfig(**cfg))
    assert s["resumed"] and s["units_already_done"] == 2 and s["rows_this_run"] == 20
    df = pd.read_parquet(tmp_path / "out")
    assert len(df) == 60 and df["crop_id"].is_unique and not (tmp_path / "out" / "_tmp").exists()
    assert pq.read_table(tmp_path / "out" / f"{key}.parquet").num_rows == 20
