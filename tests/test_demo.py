"""`cropray demo` end to end on a tiny configuration, on the shared local Ray."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cropray.cli import main
from cropray.demo import DemoConfig
from cropray.errors import ConfigError

pytestmark = pytest.mark.slow


def test_demo_end_to_end_writes_report(ray_local, tmp_path, capsys):
    wd = tmp_path / "demo"
    rc = main(["demo", "--workdir", str(wd), "--quick", "--labels", "60", "--eval-n", "200",
               "--archive-n", "1500", "--archive-files", "3", "--samples", "2", "--epochs", "1", "--json"])
    assert rc == 0
    s = json.loads(capsys.readouterr().out)
    html = (wd / "report.html").read_text()
    # Self-contained: every plot inlined; the sections a reader looks for are there.
    assert html.count("data:image/png;base64,") >= 6
    for heading in ("Headline", "Model on fresh labelled crops", "Sweep (Ray Tune)", "Archive scoring", "top-scoring crops"):
        assert heading in html
    scores = pd.read_parquet(wd / "scores")
    assert len(scores) == 1500 and scores["crop_id"].is_unique
    assert s["score"]["rows_scored"] == 1500 and s["score"]["reconciled"]
    assert 0.0 <= s["eval"]["metrics"]["roc_auc"]["value"] <= 1.0
    assert (wd / "summary.json").is_file()


def test_demo_refuses_non_empty_workdir(tmp_path, capsys):
    (tmp_path / "x.txt").write_text("keep me")
    assert main(["demo", "--workdir", str(tmp_path), "--quick"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "x.txt").exists()


def test_demo_config_validates():
    with pytest.raises(ConfigError, match="--labels"):
        DemoConfig(labels=10)
    with pytest.raises(ConfigError, match="--archive-files"):
        DemoConfig(archive_n=3, archive_files=4)
