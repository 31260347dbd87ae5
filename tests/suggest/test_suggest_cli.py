"""`cropray suggest` end to end on the shared local Ray: through the scoring pipeline, K distinct
unlabelled crops with reasons, the archive's own crops and scores; bad labels refused (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from cropray.cli import main
from cropray.suggest.config import REASONS


def test_suggest_writes_queue_of_unlabelled_crops_with_reasons(suggest_data, tmp_path, ray_local, capsys):
    archive, bundle, labels = suggest_data
    queue, scores = tmp_path / "queue.parquet", tmp_path / "scores"
    rc = main(["suggest", str(bundle), str(archive), "--n", "24", "--out", str(queue), "--labels", str(labels),
               "--scores", str(scores), "--json"])
    assert rc == 0
    s = json.loads(capsys.readouterr().out)
    assert s["n"] == 24 and s["rows_scored"] == 300 and s["labelled_skipped"] == 10
    q = pd.read_parquet(queue)
    assert len(q) == 24 and q.crop_id.is_unique
    assert not set(q.crop_id) & set(pd.read_parquet(labels).crop_id)  # labelled crops skipped
    assert set(q.reason) <= set(REASONS) and {"uncertain", "diverse", "top_score"} <= set(q.reason)
    # each row's crop is the archive's crop of that crop_id, and its score the pipeline's score
    arch = pd.read_parquet(archive).set_index("crop_id")
    for cid, crop in zip(q.crop_id[:5], q.crop[:5]):
        np.testing.assert_array_equal(np.asarray(crop, np.float32).reshape(-1),
                                      np.asarray(arch.loc[cid, "crop"], np.float32).reshape(-1))
    sc = pd.read_parquet(scores).set_index("crop_id")
    np.testing.assert_allclose(q.score.to_numpy(), sc.loc[q.crop_id, "score"].to_numpy(), rtol=1e-6)
    # ordinary score output is unchanged: no suggest columns committed
    assert not [c for c in pq.read_schema(next(scores.glob("*.parquet"))).names if c.startswith("_")]
    # the top-score picks are the highest-scoring unlabelled crops' neighbourhood: above the median
    assert q[q.reason == "top_score"].score.min() >= sc.score.median()
    assert queue.exists() and not list(tmp_path.glob(".queue.parquet.scores-*"))


def test_conflicting_labels_refused_naming_ids(suggest_data, tmp_path, ray_local, capsys):
    archive, bundle, labels = suggest_data
    df = pd.read_parquet(labels)
    bad = pd.concat([df, df.iloc[[2]].assign(label=1 - df.label.iloc[2])])
    bad.to_parquet(tmp_path / "bad.parquet")
    rc = main(["suggest", str(bundle), str(archive), "--n", "5", "--out", str(tmp_path / "q.parquet"),
               "--labels", str(tmp_path / "bad.parquet")])
    err = capsys.readouterr().err
    assert rc == 2 and str(df.crop_id.iloc[2]) in err and "bad.parquet" in err and "two different labels" in err
    assert not (tmp_path / "q.parquet").exists()
